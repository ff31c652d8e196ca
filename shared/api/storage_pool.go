package api

// StoragePoolPut holds the writable fields of a storage pool.
type StoragePoolPut struct {
	Config      map[string]string `json:"config" yaml:"config"`
	Description string            `json:"description" yaml:"description"`
}

// StoragePool is a pool as returned by GET /1.0/storage-pools/{name}.
type StoragePool struct {
	StoragePoolPut `yaml:",inline"`
	Name           string   `json:"name" yaml:"name"`
	Driver         string   `json:"driver" yaml:"driver"`
	Status         string   `json:"status" yaml:"status"`
	UsedBy         []string `json:"used_by" yaml:"used_by"`
	Locations      []string `json:"locations" yaml:"locations"`
}
