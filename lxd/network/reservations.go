package network

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/shared/atomicfile"
	"github.com/berth-dev/berth/shared/project"
)

// reservation is one static DHCP lease: the source of truth is reservations.json, from which
// the dnsmasq files are generated.
type reservation struct {
	MAC  string `json:"mac"`
	IP   string `json:"ip"`
	Host string `json:"host"`
}

func loadReservations(path string) (map[string]reservation, error) {
	out := map[string]reservation{}
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return out, nil
	}

	if err != nil {
		return nil, fmt.Errorf("reading reservations: %w", err)
	}

	err = json.Unmarshal(data, &out)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}

	return out, nil
}

// writeReservations writes the bridge's reservation files.
// Preconditions: b.mu held.
func (b *bridge) writeReservations() error {
	return writeReservationFiles(b.dir, b.domain(), b.res, b.prefix6)
}

// writeReservationFiles writes reservations.json and dnsmasq's dhcp-hostsfile and
// addn-hosts from it; with an IPv6 prefix, names resolve to each NIC's SLAAC address too.
// Every field was parsed back into a MAC, an IP or a checked host name before it got
// here: no value can break a line.
func writeReservationFiles(dir, domain string, res map[string]reservation, prefix6 *net.IPNet) error {
	owners := make([]string, 0, len(res))
	for o := range res {
		owners = append(owners, o)
	}

	sort.Strings(owners)
	var hosts, dns bytes.Buffer
	for _, o := range owners {
		r := res[o]
		fmt.Fprintf(&hosts, "%s,%s\n", r.MAC, r.IP) // no name: see dnsmasqConf
		if r.Host == "" {
			continue // no DNS name (DNSName)
		}

		if !safeDNSName(r.Host) {
			return fmt.Errorf("refusing host name %q of %s", r.Host, o)
		}

		fmt.Fprintf(&dns, "%s %s.%s %s\n", r.IP, r.Host, domain, r.Host)
		mac, err := net.ParseMAC(r.MAC)
		if prefix6 != nil && err == nil && len(mac) == 6 {
			fmt.Fprintf(&dns, "%s %s.%s %s\n", eui64(prefix6, mac), r.Host, domain, r.Host)
		}
	}

	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}

	for name, content := range map[string][]byte{
		"reservations.json": data,
		"dnsmasq.hosts":     hosts.Bytes(),
		"dnsmasq.dns":       dns.Bytes(),
	} {
		err := atomicfile.Write(filepath.Join(dir, name), content, 0o644)
		if err != nil {
			return err
		}
	}

	return nil
}

// DNSName is the name an instance's addresses get in the bridge's DNS (below its
// domain): its name in the default project, "<name>.<project>" in another, so that two
// projects' instances of one name on a shared bridge never answer for each other (Berth's
// choice). A project whose name is not a DNS label gives its instances no DNS name.
func DNSName(proj, name string) string {
	if proj == "" || proj == project.Default {
		return name
	}

	if !safeHost(proj) {
		return ""
	}

	return name + "." + proj
}

// safeDNSName: what DNSName makes, one or two DNS labels.
func safeDNSName(h string) bool {
	name, proj, two := strings.Cut(h, ".")
	return safeHost(name) && (!two || safeHost(proj))
}

// safeHost: a DNS label (instance names are RFC 1123 labels already).
func safeHost(h string) bool {
	if h == "" || len(h) > 63 {
		return false
	}

	for _, c := range h {
		if !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-') {
			return false
		}
	}

	return true
}

// leasedIPs reads dnsmasq's lease file: address → MAC. Leases of deleted instances keep
// their address until they expire; a new reservation must not take it, or dnsmasq refuses
// to hand it out.
func leasedIPs(path string) map[string]string {
	out := map[string]string{}
	f, err := os.Open(path)
	if err != nil {
		return out
	}

	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// expiry mac ip hostname client-id
		fields := strings.Fields(s.Text())
		if len(fields) >= 3 && net.ParseIP(fields[2]) != nil {
			out[fields[2]] = strings.ToLower(fields[1])
		}
	}

	return out
}

// dropLeases rewrites the lease file keeping only the leases whose MAC is in keep.
func dropLeases(path string, keep map[string]bool) error {
	data, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}

	if err != nil {
		return err
	}

	var out bytes.Buffer
	for _, line := range strings.Split(string(data), "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 3 && keep[strings.ToLower(fields[1])] {
			out.WriteString(line + "\n")
		}
	}

	return atomicfile.Write(path, out.Bytes(), 0o644)
}
