package db

import "time"

// The row types below are the DB's view of each entity. They are converted to and
// from the wire types (shared/api) and the runtime objects by their owners, never here.
//
// Split for clustering: Instance, Image, ImageAlias, Profile, Network are what a
// cluster would share; NodeConfig and StoragePool's local config belong to this member.

// Instance is one row of the instances table with its config, devices and profiles.
type Instance struct {
	ID           int64
	Name         string // the key: its name, with its project outside the default one (shared/project)
	Type         string // "container"
	Architecture string
	Description  string
	Ephemeral    bool
	Stateful     bool
	CreatedAt    time.Time
	LastUsedAt   time.Time
	Config       map[string]string            // local keys, including volatile.*; never nil
	Devices      map[string]map[string]string // local devices; never nil
	Profiles     []string                     // applied in order; never nil
	MemberID     int64                        // the member it lives on (members.id; 0 on create: 1)
	Location     string                       // that member's name (read only; "none" unclustered)
}

// InstanceFilter narrows GetInstances. Zero value means all instances.
type InstanceFilter struct {
	Name     *string
	MemberID int64 // the instances of that member only (members.id); 0: every member's
}

// Image is one row of the images table.
type Image struct {
	ID           int64
	Project      string // the project whose images it is among ("" is default on insert)
	Fingerprint  string // 64 lowercase hex
	Filename     string
	Size         int64
	Architecture string
	Type         string // "container"
	Public       bool
	AutoUpdate   bool
	Cached       bool
	CreatedAt    time.Time
	ExpiresAt    time.Time
	UploadedAt   time.Time
	LastUsedAt   time.Time
	Properties   map[string]string // never nil
}

// ImageAlias is one row of the images_aliases table.
type ImageAlias struct {
	ID          int64
	Name        string
	Description string
	Fingerprint string // the target image
	Type        string
}

// Profile is one row of the profiles table with its config and devices.
type Profile struct {
	ID          int64
	Name        string
	Description string
	Config      map[string]string            // never nil
	Devices     map[string]map[string]string // never nil
}

// StoragePool is one row of the storage_pools table.
type StoragePool struct {
	ID          int64
	Name        string
	Driver      string
	Description string
	Config      map[string]string // never nil
}

// Network is one row of the networks table.
type Network struct {
	ID          int64
	Name        string
	Type        string
	Description string
	Config      map[string]string // never nil
}
