package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// mapElem asks the kernel for the element of verdict map m whose key is port, and returns
// its verdict data (what elemJump reads; found false: no such element, set or table).
//
// It sends one NFT_MSG_GETSETELEM for that key (what `nft get element` sends): the kernel
// looks the key up and answers with that element alone. google/nftables v0.3.0 only dumps
// a set whole, and a restarting berthd checks the element of every running container's
// port: a dump each made that check grow with the bridge's ports (2.2 ms per port at 500),
// squared over the refresh. mdlayher/netlink is the library google/nftables is built on;
// this file is its only direct user.
func mapElem(m *nftables.Set, port string) (data []byte, found bool, err error) {
	req, err := elemRequest(m, port)
	if err != nil {
		return nil, false, err
	}

	c, err := netlink.Dial(unix.NETLINK_NETFILTER, nil)
	if err != nil {
		return nil, false, fmt.Errorf("opening netfilter netlink: %w", err)
	}

	defer func() { _ = c.Close() }()
	msgs, err := c.Execute(req)
	if errors.Is(err, unix.ENOENT) {
		return nil, false, nil
	}

	if err != nil {
		return nil, false, fmt.Errorf("reading %s of map %s: %w", port, m.Name, err)
	}

	for _, msg := range msgs {
		data, found, err := elemData(msg)
		if err != nil || found {
			return data, found, err
		}
	}

	return nil, false, nil
}

// elemRequest is a GETSETELEM request (not a dump) for port's key in m.
func elemRequest(m *nftables.Set, port string) (netlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.NFTA_SET_ELEM_LIST_TABLE, m.Table.Name)
	ae.String(unix.NFTA_SET_ELEM_LIST_SET, m.Name)
	ae.Nested(unix.NFTA_SET_ELEM_LIST_ELEMENTS, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(unix.NFTA_LIST_ELEM, func(ae *netlink.AttributeEncoder) error {
			ae.Nested(unix.NFTA_SET_ELEM_KEY, func(ae *netlink.AttributeEncoder) error {
				ae.Bytes(unix.NFTA_DATA_VALUE, ifname(port))
				return nil
			})
			return nil
		})
		return nil
	})

	b, err := ae.Encode()
	if err != nil {
		return netlink.Message{}, fmt.Errorf("encoding the request for %s of map %s: %w", port, m.Name, err)
	}

	// nfgenmsg: the table's family, NFNETLINK_V0, resource id 0.
	hdr := []byte{byte(m.Table.Family), unix.NFNETLINK_V0, 0, 0}
	return netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETSETELEM),
			Flags: netlink.Request,
		},
		Data: append(hdr, b...),
	}, nil
}

// elemData finds, in a NEWSETELEM message, the first element's data: the attributes inside
// its NFTA_SET_ELEM_DATA's NFTA_DATA_VERDICT (found false: the message holds no element
// with verdict data).
func elemData(msg netlink.Message) ([]byte, bool, error) {
	if msg.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM) || len(msg.Data) < 4 {
		return nil, false, nil
	}

	// Each level: the nested attribute of type want, inside b.
	inside := func(b []byte, want uint16) ([]byte, error) {
		ad, err := netlink.NewAttributeDecoder(b)
		if err != nil {
			return nil, err
		}

		ad.ByteOrder = binary.BigEndian
		for ad.Next() {
			if ad.Type() == want {
				return ad.Bytes(), nil
			}
		}

		return nil, ad.Err()
	}

	b := msg.Data[4:]
	for _, want := range []uint16{unix.NFTA_SET_ELEM_LIST_ELEMENTS, unix.NFTA_LIST_ELEM, unix.NFTA_SET_ELEM_DATA, unix.NFTA_DATA_VERDICT} {
		var err error
		b, err = inside(b, want)
		if err != nil {
			return nil, false, fmt.Errorf("decoding a map element: %w", err)
		}

		if b == nil {
			return nil, false, nil
		}
	}

	return b, true, nil
}
