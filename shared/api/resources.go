package api

// Resources is GET /1.0/resources: the host's hardware, in LXD's shapes (extension
// resources_v2). Berth fills what /proc and /sys tell; the rest stays zero or empty.
type Resources struct {
	CPU     ResourcesCPU     `json:"cpu" yaml:"cpu"`
	Memory  ResourcesMemory  `json:"memory" yaml:"memory"`
	GPU     ResourcesGPU     `json:"gpu" yaml:"gpu"`
	Network ResourcesNetwork `json:"network" yaml:"network"`
	Storage ResourcesStorage `json:"storage" yaml:"storage"`
	USB     ResourcesUSB     `json:"usb" yaml:"usb"`
	PCI     ResourcesPCI     `json:"pci" yaml:"pci"`
	System  ResourcesSystem  `json:"system" yaml:"system"`
}

// ResourcesCPU is the host's processors.
type ResourcesCPU struct {
	Architecture string               `json:"architecture" yaml:"architecture"`
	Sockets      []ResourcesCPUSocket `json:"sockets" yaml:"sockets"`
	Total        uint64               `json:"total" yaml:"total"`
}

// ResourcesCPUSocket is one processor package.
type ResourcesCPUSocket struct {
	Name             string              `json:"name,omitempty" yaml:"name,omitempty"`
	Vendor           string              `json:"vendor,omitempty" yaml:"vendor,omitempty"`
	Socket           uint64              `json:"socket" yaml:"socket"`
	Cache            []ResourcesCPUCache `json:"cache,omitempty" yaml:"cache,omitempty"`
	Cores            []ResourcesCPUCore  `json:"cores" yaml:"cores"`
	Frequency        uint64              `json:"frequency,omitempty" yaml:"frequency,omitempty"`
	FrequencyMinimum uint64              `json:"frequency_minimum,omitempty" yaml:"frequency_minimum,omitempty"`
	FrequencyTurbo   uint64              `json:"frequency_turbo,omitempty" yaml:"frequency_turbo,omitempty"`
}

// ResourcesCPUCache is one cache of a socket.
type ResourcesCPUCache struct {
	Level uint64 `json:"level" yaml:"level"`
	Type  string `json:"type" yaml:"type"`
	Size  uint64 `json:"size" yaml:"size"`
}

// ResourcesCPUCore is one core.
type ResourcesCPUCore struct {
	Core      uint64               `json:"core" yaml:"core"`
	Die       uint64               `json:"die" yaml:"die"`
	Threads   []ResourcesCPUThread `json:"threads" yaml:"threads"`
	Frequency uint64               `json:"frequency,omitempty" yaml:"frequency,omitempty"`
}

// ResourcesCPUThread is one hardware thread (a logical CPU).
type ResourcesCPUThread struct {
	ID       int64  `json:"id" yaml:"id"`
	NUMANode uint64 `json:"numa_node" yaml:"numa_node"`
	Thread   uint64 `json:"thread" yaml:"thread"`
	Online   bool   `json:"online" yaml:"online"`
	Isolated bool   `json:"isolated" yaml:"isolated"`
}

// ResourcesMemory is the host's memory, in bytes.
type ResourcesMemory struct {
	Nodes          []ResourcesMemoryNode `json:"nodes,omitempty" yaml:"nodes,omitempty"`
	HugepagesTotal uint64                `json:"hugepages_total" yaml:"hugepages_total"`
	HugepagesUsed  uint64                `json:"hugepages_used" yaml:"hugepages_used"`
	HugepagesSize  uint64                `json:"hugepages_size" yaml:"hugepages_size"`
	Used           uint64                `json:"used" yaml:"used"`
	Total          uint64                `json:"total" yaml:"total"`
}

// ResourcesMemoryNode is the memory of one NUMA node.
type ResourcesMemoryNode struct {
	NUMANode       uint64 `json:"numa_node" yaml:"numa_node"`
	HugepagesUsed  uint64 `json:"hugepages_used" yaml:"hugepages_used"`
	HugepagesTotal uint64 `json:"hugepages_total" yaml:"hugepages_total"`
	Used           uint64 `json:"used" yaml:"used"`
	Total          uint64 `json:"total" yaml:"total"`
}

// ResourcesGPU lists GPUs (Berth reports none).
type ResourcesGPU struct {
	Cards []struct{} `json:"cards" yaml:"cards"`
	Total uint64     `json:"total" yaml:"total"`
}

// ResourcesNetwork lists the host's physical network cards.
type ResourcesNetwork struct {
	Cards []ResourcesNetworkCard `json:"cards" yaml:"cards"`
	Total uint64                 `json:"total" yaml:"total"`
}

// ResourcesNetworkCard is one network device.
type ResourcesNetworkCard struct {
	Ports         []ResourcesNetworkCardPort `json:"ports,omitempty" yaml:"ports,omitempty"`
	NUMANode      uint64                     `json:"numa_node" yaml:"numa_node"`
	Vendor        string                     `json:"vendor,omitempty" yaml:"vendor,omitempty"`
	VendorID      string                     `json:"vendor_id,omitempty" yaml:"vendor_id,omitempty"`
	Product       string                     `json:"product,omitempty" yaml:"product,omitempty"`
	ProductID     string                     `json:"product_id,omitempty" yaml:"product_id,omitempty"`
	Driver        string                     `json:"driver,omitempty" yaml:"driver,omitempty"`
	DriverVersion string                     `json:"driver_version,omitempty" yaml:"driver_version,omitempty"`
	PCIAddress    string                     `json:"pci_address,omitempty" yaml:"pci_address,omitempty"`
}

// ResourcesNetworkCardPort is one interface of a card.
type ResourcesNetworkCardPort struct {
	ID           string `json:"id" yaml:"id"`
	Address      string `json:"address,omitempty" yaml:"address,omitempty"`
	Port         uint64 `json:"port" yaml:"port"`
	Protocol     string `json:"protocol" yaml:"protocol"`
	LinkDetected bool   `json:"link_detected" yaml:"link_detected"`
	LinkSpeed    uint64 `json:"link_speed,omitempty" yaml:"link_speed,omitempty"`
	LinkDuplex   string `json:"link_duplex,omitempty" yaml:"link_duplex,omitempty"`
}

// ResourcesStorage lists the host's disks.
type ResourcesStorage struct {
	Disks []ResourcesStorageDisk `json:"disks" yaml:"disks"`
	Total uint64                 `json:"total" yaml:"total"`
}

// ResourcesStorageDisk is one block device with its partitions.
type ResourcesStorageDisk struct {
	ID         string                          `json:"id" yaml:"id"`
	Device     string                          `json:"device" yaml:"device"`
	Model      string                          `json:"model,omitempty" yaml:"model,omitempty"`
	Type       string                          `json:"type,omitempty" yaml:"type,omitempty"`
	ReadOnly   bool                            `json:"read_only" yaml:"read_only"`
	Size       uint64                          `json:"size" yaml:"size"`
	Removable  bool                            `json:"removable" yaml:"removable"`
	WWN        string                          `json:"wwn,omitempty" yaml:"wwn,omitempty"`
	NUMANode   uint64                          `json:"numa_node" yaml:"numa_node"`
	BlockSize  uint64                          `json:"block_size" yaml:"block_size"`
	RPM        uint64                          `json:"rpm" yaml:"rpm"`
	Serial     string                          `json:"serial,omitempty" yaml:"serial,omitempty"`
	PCIAddress string                          `json:"pci_address,omitempty" yaml:"pci_address,omitempty"`
	Partitions []ResourcesStorageDiskPartition `json:"partitions" yaml:"partitions"`
}

// ResourcesStorageDiskPartition is one partition of a disk.
type ResourcesStorageDiskPartition struct {
	ID        string `json:"id" yaml:"id"`
	Device    string `json:"device" yaml:"device"`
	ReadOnly  bool   `json:"read_only" yaml:"read_only"`
	Size      uint64 `json:"size" yaml:"size"`
	Partition uint64 `json:"partition" yaml:"partition"`
}

// ResourcesUSB lists USB devices (Berth reports none).
type ResourcesUSB struct {
	Devices []struct{} `json:"devices" yaml:"devices"`
	Total   uint64     `json:"total" yaml:"total"`
}

// ResourcesPCI lists the host's PCI devices.
type ResourcesPCI struct {
	Devices []ResourcesPCIDevice `json:"devices" yaml:"devices"`
	Total   uint64               `json:"total" yaml:"total"`
}

// ResourcesPCIDevice is one PCI device.
type ResourcesPCIDevice struct {
	Driver     string `json:"driver" yaml:"driver"`
	NUMANode   uint64 `json:"numa_node" yaml:"numa_node"`
	PCIAddress string `json:"pci_address" yaml:"pci_address"`
	Vendor     string `json:"vendor" yaml:"vendor"`
	VendorID   string `json:"vendor_id" yaml:"vendor_id"`
	Product    string `json:"product" yaml:"product"`
	ProductID  string `json:"product_id" yaml:"product_id"`
	IOMMUGroup uint64 `json:"iommu_group" yaml:"iommu_group"`
}

// ResourcesSystem is the machine as DMI describes it.
type ResourcesSystem struct {
	UUID        string                      `json:"uuid" yaml:"uuid"`
	Vendor      string                      `json:"vendor" yaml:"vendor"`
	Product     string                      `json:"product" yaml:"product"`
	Family      string                      `json:"family" yaml:"family"`
	Version     string                      `json:"version" yaml:"version"`
	Sku         string                      `json:"sku" yaml:"sku"`
	Serial      string                      `json:"serial" yaml:"serial"`
	Type        string                      `json:"type" yaml:"type"`
	Firmware    *ResourcesSystemFirmware    `json:"firmware" yaml:"firmware"`
	Chassis     *ResourcesSystemChassis     `json:"chassis" yaml:"chassis"`
	Motherboard *ResourcesSystemMotherboard `json:"motherboard" yaml:"motherboard"`
}

// ResourcesSystemFirmware is the BIOS or UEFI firmware.
type ResourcesSystemFirmware struct {
	Vendor  string `json:"vendor" yaml:"vendor"`
	Date    string `json:"date" yaml:"date"`
	Version string `json:"version" yaml:"version"`
}

// ResourcesSystemChassis is the chassis.
type ResourcesSystemChassis struct {
	Vendor  string `json:"vendor" yaml:"vendor"`
	Type    string `json:"type" yaml:"type"`
	Serial  string `json:"serial" yaml:"serial"`
	Version string `json:"version" yaml:"version"`
}

// ResourcesSystemMotherboard is the motherboard.
type ResourcesSystemMotherboard struct {
	Vendor  string `json:"vendor" yaml:"vendor"`
	Product string `json:"product" yaml:"product"`
	Serial  string `json:"serial" yaml:"serial"`
	Version string `json:"version" yaml:"version"`
}
