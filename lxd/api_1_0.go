package main

import (
	"net/http"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// endpoints is the whole API: one line per URL, handlers in <resource>.go files.
var endpoints = []APIEndpoint{
	{Path: "", Get: serverGet, Put: serverPut, Patch: serverPut, Untrusted: []string{http.MethodGet}},
	{Path: "certificates", Get: certificatesGet, Post: certificatesPost, Untrusted: []string{http.MethodPost}},
	{Path: "certificates/{fingerprint}", Get: certificateGet, Put: certificatePut, Patch: certificatePatch, Delete: certificateDelete},
	{Path: "metrics", Get: metricsGet},
	{Path: "events", Get: eventsGet},
	{Path: "operations", Get: operationsGet},
	{Path: "operations/{id}", Get: operationGet, Delete: operationDelete},
	{Path: "operations/{id}/wait", Get: operationWait, Untrusted: []string{http.MethodGet}},
	{Path: "operations/{id}/websocket", Get: operationWebsocket, Untrusted: []string{http.MethodGet}},
	{Path: "instances", Get: instancesGet, Post: instancesPost, Put: instancesPut},
	{Path: "instances/{name}", Get: instanceGet, Delete: instanceDelete, Put: instancePut, Patch: instancePatch, Post: instanceRename},
	{Path: "instances/{name}/state", Get: instanceStateGet, Put: instanceStatePut},
	{Path: "instances/{name}/snapshots", Get: instanceSnapshotsGet, Post: instanceSnapshotsPost},
	{Path: "instances/{name}/snapshots/{snap}", Get: instanceSnapshotGet, Put: instanceSnapshotPut, Patch: instanceSnapshotPatch, Post: instanceSnapshotPost, Delete: instanceSnapshotDelete},
	{Path: "instances/{name}/files", Get: instanceFileGet, Post: instanceFilePost, Delete: instanceFileDelete},
	{Path: "instances/{name}/exec", Post: instanceExecPost},
	{Path: "instances/{name}/console", Get: instanceConsoleGet, Post: instanceConsolePost, Delete: instanceConsoleDelete},
	{Path: "internal/debug/goroutines", Get: debugGoroutinesGet},
	{Path: "instances/{name}/backups", Get: instanceBackupsGet, Post: instanceBackupsPost},
	{Path: "instances/{name}/backups/{backup}", Get: instanceBackupGet, Post: instanceBackupPost, Delete: instanceBackupDelete},
	{Path: "instances/{name}/backups/{backup}/export", Get: instanceBackupExport},
	{Path: "instances/{name}/logs", Get: instanceLogsGet},
	{Path: "instances/{name}/metadata", Get: instanceMetadataGet, Put: instanceMetadataPut, Patch: instanceMetadataPatch},
	{Path: "instances/{name}/metadata/templates", Get: instanceTemplatesGet, Post: instanceTemplatesPost, Put: instanceTemplatesPost, Delete: instanceTemplatesDelete},
	{Path: "instances/{name}/logs/{file}", Get: instanceLogGet, Delete: instanceLogDelete},
	{Path: "images", Get: imagesGet, Post: imagesPost, Untrusted: []string{http.MethodGet, http.MethodPost}},
	{Path: "images/aliases", Get: aliasesGet, Post: aliasesPost},
	{Path: "images/aliases/{name:.*}", Get: aliasGet, Put: aliasPut, Patch: aliasPatch, Post: aliasPost, Delete: aliasDelete, Untrusted: []string{http.MethodGet}},
	{Path: "images/{fingerprint}", Get: imageGet, Put: imagePut, Patch: imagePatch, Delete: imageDelete, Untrusted: []string{http.MethodGet}},
	{Path: "images/{fingerprint}/export", Get: imageExport, Post: imageExportPost, Untrusted: []string{http.MethodGet}},
	{Path: "images/{fingerprint}/secret", Post: imageSecretPost},
	{Path: "images/{fingerprint}/refresh", Post: imageRefresh},
	{Path: "profiles", Get: profilesGet, Post: profilesPost},
	{Path: "profiles/{name}", Get: profileGet, Put: profilePut, Patch: profilePatch, Post: profilePost, Delete: profileDelete},
	{Path: "storage-pools", Get: storagePoolsGet, Post: storagePoolsPost},
	{Path: "storage-pools/{name}", Get: storagePoolGet, Put: storagePoolPut, Patch: storagePoolPatch, Delete: storagePoolDelete},
	{Path: "storage-pools/{name}/resources", Get: storagePoolResourcesGet},
	{Path: "storage-pools/{name}/volumes", Get: storageVolumesGet, Post: storageVolumesPost},
	{Path: "storage-pools/{name}/volumes/{type}", Get: storageVolumesGet, Post: storageVolumesPost},
	{Path: "storage-pools/{name}/volumes/{type}/{volume}", Get: storageVolumeGet, Put: storageVolumePut, Patch: storageVolumePatch, Post: storageVolumePost, Delete: storageVolumeDelete},
	{Path: "storage-pools/{name}/volumes/{type}/{volume}/backups", Get: storageVolumeBackupsGet, Post: storageVolumeBackupsPost},
	{Path: "storage-pools/{name}/volumes/{type}/{volume}/backups/{backup}", Get: storageVolumeBackupGet, Post: storageVolumeBackupPost, Delete: storageVolumeBackupDelete},
	{Path: "storage-pools/{name}/volumes/{type}/{volume}/backups/{backup}/export", Get: storageVolumeBackupExport},
	{Path: "storage-pools/{name}/volumes/{type}/{volume}/snapshots", Get: storageVolumeSnapshotsGet, Post: storageVolumeSnapshotsPost},
	{Path: "storage-pools/{name}/volumes/{type}/{volume}/state", Get: storageVolumeStateGet},
	{Path: "storage-pools/{name}/volumes/{type}/{volume}/snapshots/{snapshot}", Get: storageVolumeSnapshotGet, Put: storageVolumeSnapshotPut, Patch: storageVolumeSnapshotPatch, Post: storageVolumeSnapshotPost, Delete: storageVolumeSnapshotDelete},
	{Path: "networks", Get: networksGet, Post: networksPost},
	{Path: "networks/{name}", Get: networkGet, Put: networkPut, Patch: networkPatch, Delete: networkDelete, Post: networkPost},
	{Path: "networks/{name}/state", Get: networkStateGet},
	{Path: "networks/{name}/leases", Get: networkLeasesGet},
	{Path: "networks/{name}/forwards", Get: networkForwardsGet, Post: networkForwardsPost},
	{Path: "networks/{name}/forwards/{listen}", Get: networkForwardGet, Put: networkForwardPut, Patch: networkForwardPatch, Delete: networkForwardDelete},
	{Path: "network-acls", Get: networkACLsGet, Post: networkACLsPost},
	{Path: "network-acls/{name}", Get: networkACLGet, Put: networkACLPut, Patch: networkACLPatch, Post: networkACLPost, Delete: networkACLDelete},
	{Path: "projects", Get: projectsGet, Post: projectsPost},
	{Path: "projects/{name}", Get: projectGet, Put: projectPut, Patch: projectPatch, Post: projectPost, Delete: projectDelete},
	{Path: "projects/{name}/state", Get: projectStateGet},
	{Path: "warnings", Get: warningsGet},
	{Path: "resources", Get: resourcesGet},
	{Path: "warnings/{uuid}", Get: warningGet, Put: warningPut, Patch: warningPut, Delete: warningDelete},
	{Path: "cluster/members/{name}", Get: clusterMemberGet, Put: clusterMemberPut, Patch: clusterMemberPatch, Post: clusterMemberPost, Delete: clusterMemberDelete},
}

// apiExtensions lists exactly what berthd serves end to end: the client uses what is
// advertised. doc/lxd-compat.md lists what is left
// out and why (test/integration/parity_doc_test.go checks it stays out).
var apiExtensions = []string{
	"instances",
	"api_filtering",
	"container_full",
	"instance_get_full",
	"storage",
	"network",
	"etag",
	"metrics",
	"directory_manipulation",
	"file_symlinks",
	"file_append",
	"file_delete",
	"snapshot_expiry_creation",
	"container_only_migration",
	"container_push",
	"container_incremental_copy",
	"container_push_target",
	"container_backup",
	"backup_override_name",
	"container_backup_override_pool",
	"console",
	"container_exec_user_group_cwd",
	"container_exec_recording",
	"network_state",
	"network_leases",
	"network_forward",
	"network_acl",
	"warnings",
	"resources",
	"resources_v2",
	"resources_cpu_socket",
	"resources_system",
	"certificate_update",
	"certificate_token",
	"container_edit_metadata",
	"image_force_refresh",
	"images_push_relay",
	"storage_api_volume_rename",
	"storage_api_volume_snapshots",
	"storage_api_local_volume_handling",
	"custom_volume_snapshot_expiry",
	"custom_volume_backup",
	"projects",
	"instance_all_projects",
	"project_limits",
	"project_usage",
	"certificate_project",
	"container_copy_project",
	"instance_pool_move",
	"instance_project_move",
	"storage_volume_state",
	// The 5.0 client checks these before GET/PUT /1.0/cluster (clustering), a join with
	// server_address (clustering_join), POST /1.0/cluster/members (clustering_join_token)
	// and lxc cluster evacuate/restore (clustering_evacuation).
	"clustering",
	"clustering_join",
	"clustering_join_token",
	"clustering_evacuation",
	// The 5.0 client checks these before PUT of a member (clustering_edit_roles; the
	// database roles stay read only, as in LXD), with a failure domain
	// (clustering_failure_domains), cluster groups and ?target=@group (cluster_groups.go),
	// PUT /1.0/cluster/certificate (cluster_certificate.go).
	"clustering_edit_roles",
	"clustering_failure_domains",
	"clustering_groups",
	"clustering_update_cert",
	// Not LXD 5.0's: Incus's start field of POST /1.0/instances (instances_start.go).
	"instance_create_start",
	// Berth's own: GET /1.0/instances?omit=config,devices (instances_omit.go).
	"instances_list_omit",
}

func serverGet(d *Daemon, r *http.Request) response.Response {
	c := callerOf(r)
	if !trustedFor(r) {
		return response.SyncResponse(true, api.ServerUntrusted{
			APIExtensions: apiExtensions,
			APIStatus:     "stable",
			APIVersion:    "1.0",
			Auth:          "untrusted",
			AuthMethods:   []string{"tls"},
		})
	}

	config := d.serverConfig()
	if !c.Admin() {
		config = map[string]string{}
	}

	var uts unix.Utsname
	_ = unix.Uname(&uts)
	hostname, _ := os.Hostname()
	osName, osVersion := osRelease()

	srv := api.Server{
		APIExtensions: apiExtensions,
		APIStatus:     "stable",
		APIVersion:    "1.0",
		Auth:          "trusted",
		AuthMethods:   []string{"tls"},
		Config:        config,
		Environment: api.ServerEnvironment{
			Addresses:          d.httpsAddresses(),
			Architectures:      []string{archName()},
			Driver:             "berth",
			DriverVersion:      Version,
			Firewall:           "nftables",
			Kernel:             unix.ByteSliceToString(uts.Sysname[:]),
			KernelArchitecture: unix.ByteSliceToString(uts.Machine[:]),
			KernelVersion:      unix.ByteSliceToString(uts.Release[:]),
			KernelFeatures:     map[string]string{"idmapped_mounts": "true", "pidfds": "true"},
			LXCFeatures:        map[string]string{},
			OSName:             osName,
			OSVersion:          osVersion,
			Project:            projectOf(r),
			Server:             "berth",
			ServerEventMode:    "full-mesh",
			ServerName:         hostname,
			ServerPid:          os.Getpid(),
			ServerVersion:      Version,
			Storage:            d.pool.Name(),
			StorageVersion:     "1",
			StorageSupportedDrivers: []api.ServerStorageDriverInfo{
				{Name: "dir", Version: "1"}, {Name: "overlay", Version: "1"},
			},
			CgroupVersion: d.cgroups.Mode.String(),
		},
	}

	if d.clustered() {
		srv.Environment.ServerClustered = true
		srv.Environment.ServerName = d.memberSvc().Self().Name
	}

	if c := d.currentCert(); c != nil {
		srv.Environment.Certificate = c.PEM
		srv.Environment.CertificateFingerprint = c.Fingerprint
	}

	return response.SyncResponseETag(true, srv, srv.Config)
}

// archName returns LXD's name for this machine's architecture.
func archName() string {
	switch runtime.GOARCH {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "aarch64"
	}

	return runtime.GOARCH
}

func osRelease() (string, string) {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "", ""
	}

	var name, version string
	for _, line := range strings.Split(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}

		v = strings.Trim(v, "\"")
		switch k {
		case "NAME":
			name = v
		case "VERSION_ID":
			version = v
		}
	}

	return name, version
}
