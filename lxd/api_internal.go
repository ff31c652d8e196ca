package main

import (
	"net/http"
)

// internalEndpoints are served under /internal/ (not /1.0): calls between cluster
// members. Only a caller presenting the cluster certificate (a member) may use them;
// an endpoint's Untrusted methods are the exceptions that authenticate otherwise (the
// accept call, by its join token's secret).
var internalEndpoints = []APIEndpoint{
	{Path: "internal/cluster/accept", Post: internalClusterAccept, Untrusted: []string{http.MethodPost}},
}

// clusterEndpoints are the membership core's /1.0/cluster endpoints.
var clusterEndpoints = []APIEndpoint{
	{Path: "cluster", Get: clusterGet, Put: clusterPut},
	{Path: "cluster/members", Get: clusterMembersGet, Post: clusterMembersPost}, // GET: cluster_members.go
}

func init() {
	endpoints = append(endpoints, clusterEndpoints...)
}
