package resources

import (
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// storage lists the block devices backed by hardware (a "device" link: not loop, ram, zram
// or device-mapper) with their partitions.
func (h Host) storage() api.ResourcesStorage {
	out := api.ResourcesStorage{Disks: []api.ResourcesStorageDisk{}}
	base := h.path("sys/class/block")
	names := list(base)
	sort.Strings(names)
	for _, name := range names {
		dir := filepath.Join(base, name)
		if exists(filepath.Join(dir, "partition")) || !exists(filepath.Join(dir, "device")) {
			continue
		}

		sectors, _ := readUint(filepath.Join(dir, "size"))
		ro, _ := readUint(filepath.Join(dir, "ro"))
		removable, _ := readUint(filepath.Join(dir, "removable"))
		bs, _ := readUint(filepath.Join(dir, "queue", "logical_block_size"))
		d := api.ResourcesStorageDisk{
			ID: name, Device: readString(filepath.Join(dir, "dev")), Size: sectors * 512,
			Model:    readString(filepath.Join(dir, "device", "model")),
			Serial:   readString(filepath.Join(dir, "device", "serial")),
			WWN:      readString(filepath.Join(dir, "device", "wwid")),
			Type:     diskType(name, filepath.Join(dir, "device")),
			ReadOnly: ro == 1, Removable: removable == 1, BlockSize: bs,
			NUMANode:   numaNode(filepath.Join(dir, "device", "device")),
			Partitions: []api.ResourcesStorageDiskPartition{},
		}

		parts := list(dir)
		sort.Strings(parts)
		for _, p := range parts {
			pdir := filepath.Join(dir, p)
			num, ok := readUint(filepath.Join(pdir, "partition"))
			if !ok {
				continue
			}

			psec, _ := readUint(filepath.Join(pdir, "size"))
			pro, _ := readUint(filepath.Join(pdir, "ro"))
			d.Partitions = append(d.Partitions, api.ResourcesStorageDiskPartition{
				ID: p, Device: readString(filepath.Join(pdir, "dev")), ReadOnly: pro == 1, Size: psec * 512, Partition: num,
			})
		}

		out.Disks = append(out.Disks, d)
	}

	out.Total = uint64(len(out.Disks))
	return out
}

// diskType names the bus as LXD does, from the device name and its driver.
func diskType(name, devDir string) string {
	switch {
	case strings.HasPrefix(name, "nvme"):
		return "nvme"
	case strings.HasPrefix(name, "vd"):
		return "virtio"
	case strings.HasPrefix(name, "mmcblk"):
		return "mmc"
	case strings.HasPrefix(name, "sd"):
		return "scsi"
	}

	return linkBase(filepath.Join(devDir, "subsystem"))
}

// network lists the host's network devices backed by hardware (a "device" link: not
// bridges, veths or other virtual interfaces), one card per device with its port.
func (h Host) network() api.ResourcesNetwork {
	out := api.ResourcesNetwork{Cards: []api.ResourcesNetworkCard{}}
	base := h.path("sys/class/net")
	names := list(base)
	sort.Strings(names)
	for _, name := range names {
		dir := filepath.Join(base, name)
		dev := filepath.Join(dir, "device")
		if !exists(dev) {
			continue
		}

		port := api.ResourcesNetworkCardPort{ID: name, Address: readString(filepath.Join(dir, "address")), Protocol: "ethernet"}
		if t := readString(filepath.Join(dir, "type")); t == "32" {
			port.Protocol = "infiniband"
		}

		port.Port, _ = readUint(filepath.Join(dir, "dev_port"))
		carrier, _ := readUint(filepath.Join(dir, "carrier"))
		port.LinkDetected = carrier == 1
		if speed, err := strconv.ParseInt(readString(filepath.Join(dir, "speed")), 10, 64); err == nil && speed > 0 {
			port.LinkSpeed = uint64(speed)
		}

		if dup := readString(filepath.Join(dir, "duplex")); dup == "full" || dup == "half" {
			port.LinkDuplex = dup
		}

		card := api.ResourcesNetworkCard{
			Ports: []api.ResourcesNetworkCardPort{port}, NUMANode: numaNode(dev),
			Driver:   linkBase(filepath.Join(dev, "driver")),
			VendorID: strings.TrimPrefix(readString(filepath.Join(dev, "vendor")), "0x"),
		}

		card.ProductID = strings.TrimPrefix(readString(filepath.Join(dev, "device")), "0x")
		if linkBase(filepath.Join(dev, "subsystem")) == "pci" {
			card.PCIAddress = linkBase(dev)
		}

		out.Cards = append(out.Cards, card)
	}

	out.Total = uint64(len(out.Cards))
	return out
}

// pci lists the PCI devices.
func (h Host) pci() api.ResourcesPCI {
	out := api.ResourcesPCI{Devices: []api.ResourcesPCIDevice{}}
	base := h.path("sys/bus/pci/devices")
	names := list(base)
	sort.Strings(names)
	for _, name := range names {
		dir := filepath.Join(base, name)
		group, _ := strconv.ParseUint(linkBase(filepath.Join(dir, "iommu_group")), 10, 64)
		out.Devices = append(out.Devices, api.ResourcesPCIDevice{
			PCIAddress: name, Driver: linkBase(filepath.Join(dir, "driver")), NUMANode: numaNode(dir),
			VendorID:   strings.TrimPrefix(readString(filepath.Join(dir, "vendor")), "0x"),
			ProductID:  strings.TrimPrefix(readString(filepath.Join(dir, "device")), "0x"),
			IOMMUGroup: group,
		})
	}

	out.Total = uint64(len(out.Devices))
	return out
}

// system reads DMI (/sys/class/dmi/id); the type is "virtual-machine" when the CPU says
// it runs under a hypervisor, else "unknown" (Berth does not guess "physical").
func (h Host) system() api.ResourcesSystem {
	dmi := func(f string) string { return readString(h.path(filepath.Join("sys/class/dmi/id", f))) }
	out := api.ResourcesSystem{
		UUID: dmi("product_uuid"), Vendor: dmi("sys_vendor"), Product: dmi("product_name"),
		Family: dmi("product_family"), Version: dmi("product_version"), Sku: dmi("product_sku"),
		Serial: dmi("product_serial"), Type: "unknown",
		Firmware:    &api.ResourcesSystemFirmware{Vendor: dmi("bios_vendor"), Date: dmi("bios_date"), Version: dmi("bios_version")},
		Chassis:     &api.ResourcesSystemChassis{Vendor: dmi("chassis_vendor"), Type: dmi("chassis_type"), Serial: dmi("chassis_serial"), Version: dmi("chassis_version")},
		Motherboard: &api.ResourcesSystemMotherboard{Vendor: dmi("board_vendor"), Product: dmi("board_name"), Serial: dmi("board_serial"), Version: dmi("board_version")},
	}

	data, _ := readFile(h.path("proc/cpuinfo"))
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "flags" {
			if strings.Contains(" "+v+" ", " hypervisor ") {
				out.Type = "virtual-machine"
			}

			break
		}
	}

	return out
}
