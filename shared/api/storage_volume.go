package api

import "time"

// StorageVolumePut holds the writable fields of a storage volume.
type StorageVolumePut struct {
	Config      map[string]string `json:"config" yaml:"config"`
	Description string            `json:"description" yaml:"description"`
	// Restore names a snapshot to restore the volume from.
	Restore string `json:"restore,omitempty" yaml:"restore,omitempty"`
}

// StorageVolume is a volume as returned by GET /1.0/storage-pools/{pool}/volumes/{type}/{name}.
type StorageVolume struct {
	StorageVolumePut `yaml:",inline"`
	Name             string    `json:"name" yaml:"name"`
	Type             string    `json:"type" yaml:"type"`
	UsedBy           []string  `json:"used_by" yaml:"used_by"`
	Location         string    `json:"location" yaml:"location"`
	ContentType      string    `json:"content_type" yaml:"content_type"`
	Project          string    `json:"project" yaml:"project"`
	CreatedAt        time.Time `json:"created_at" yaml:"created_at"`
}

// StorageVolumeSource says where a new volume's content comes from (a copy).
type StorageVolumeSource struct {
	Name       string `json:"name" yaml:"name"`
	Type       string `json:"type" yaml:"type"`
	Pool       string `json:"pool" yaml:"pool"`
	Project    string `json:"project,omitempty" yaml:"project,omitempty"`
	VolumeOnly bool   `json:"volume_only" yaml:"volume_only"`
	Refresh    bool   `json:"refresh" yaml:"refresh"`
	Mode       string `json:"mode,omitempty" yaml:"mode,omitempty"`
}

// StorageVolumesPost is the body of POST /1.0/storage-pools/{pool}/volumes/{type}.
type StorageVolumesPost struct {
	StorageVolumePut `yaml:",inline"`
	Name             string              `json:"name" yaml:"name"`
	Type             string              `json:"type" yaml:"type"`
	ContentType      string              `json:"content_type" yaml:"content_type"`
	Source           StorageVolumeSource `json:"source" yaml:"source"`
}

// StorageVolumePost is the body of POST /1.0/storage-pools/{pool}/volumes/{type}/{name}:
// a rename, or a move to another pool.
type StorageVolumePost struct {
	Name       string `json:"name" yaml:"name"`
	Pool       string `json:"pool,omitempty" yaml:"pool,omitempty"`
	Project    string `json:"project,omitempty" yaml:"project,omitempty"`
	Migration  bool   `json:"migration" yaml:"migration"`
	VolumeOnly bool   `json:"volume_only" yaml:"volume_only"`
}

// StorageVolumeSnapshotPut holds the writable fields of a volume snapshot.
type StorageVolumeSnapshotPut struct {
	Description string     `json:"description" yaml:"description"`
	ExpiresAt   *time.Time `json:"expires_at" yaml:"expires_at"`
}

// StorageVolumeSnapshot is one snapshot of a volume.
type StorageVolumeSnapshot struct {
	StorageVolumeSnapshotPut `yaml:",inline"`
	Name                     string            `json:"name" yaml:"name"`
	Config                   map[string]string `json:"config" yaml:"config"`
	ContentType              string            `json:"content_type" yaml:"content_type"`
	CreatedAt                time.Time         `json:"created_at" yaml:"created_at"`
}

// StorageVolumeSnapshotsPost is the body of POST .../snapshots.
type StorageVolumeSnapshotsPost struct {
	Name      string     `json:"name" yaml:"name"`
	ExpiresAt *time.Time `json:"expires_at" yaml:"expires_at"`
}

// StorageVolumeSnapshotPost renames a snapshot.
type StorageVolumeSnapshotPost struct {
	Name string `json:"name" yaml:"name"`
}

// StoragePoolVolumeBackupsPost is the body of POST .../volumes/custom/{name}/backups.
type StoragePoolVolumeBackupsPost struct {
	Name                 string    `json:"name" yaml:"name"`
	ExpiresAt            time.Time `json:"expires_at" yaml:"expires_at"`
	VolumeOnly           bool      `json:"volume_only" yaml:"volume_only"`
	OptimizedStorage     bool      `json:"optimized_storage" yaml:"optimized_storage"`
	CompressionAlgorithm string    `json:"compression_algorithm" yaml:"compression_algorithm"`
}

// StoragePoolVolumeBackup is one exported backup of a volume.
type StoragePoolVolumeBackup struct {
	Name             string    `json:"name" yaml:"name"`
	CreatedAt        time.Time `json:"created_at" yaml:"created_at"`
	ExpiresAt        time.Time `json:"expires_at" yaml:"expires_at"`
	VolumeOnly       bool      `json:"volume_only" yaml:"volume_only"`
	OptimizedStorage bool      `json:"optimized_storage" yaml:"optimized_storage"`
}
