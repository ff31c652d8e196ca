package api

// StorageVolumeState is GET /1.0/storage-pools/{pool}/volumes/{type}/{volume}/state:
// the live state of a volume. Usage is nil where the pool cannot tell it.
type StorageVolumeState struct {
	Usage *StorageVolumeStateUsage `json:"usage" yaml:"usage"`
}

// StorageVolumeStateUsage is a volume's disk usage: Used bytes, and Total, its size
// limit in bytes (-1 when it has none).
type StorageVolumeStateUsage struct {
	Used  uint64 `json:"used" yaml:"used"`
	Total int64  `json:"total" yaml:"total"`
}

// StoragePoolVolumeBackupPost renames a volume backup.
type StoragePoolVolumeBackupPost struct {
	Name string `json:"name" yaml:"name"`
}
