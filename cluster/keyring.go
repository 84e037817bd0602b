package cluster

import (
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Gossip encryption keys. Gossip encrypts with cluster.encrypt_key (the
// primary key of memberlist's keyring) and decrypts with it or any of
// cluster.encrypt_key_secondary. A key is rotated in three rounds over
// every node, each round complete before the next starts (rolling restarts
// with the changed configuration, or SetGossipKeys on running nodes), as
// Consul's `keyring -install/-use/-remove`:
//
//  1. install: add the new key as a secondary key;
//  2. use: make it the primary key, the old one secondary;
//  3. remove: drop the old key.
//
// At every moment each node decrypts what every other node encrypts.

// gossipKeyring builds the keyring of c (EncryptKey set).
func (c Config) gossipKeyring() (*memberlist.Keyring, error) {
	primary, err := c.encryptKey()
	if err != nil {
		return nil, fmt.Errorf("cluster.encrypt_key: %w", err)
	}
	keys := [][]byte{primary}
	for i, s := range c.SecondaryEncryptKeys {
		k, err := decodeGossipKey(s)
		if err != nil {
			return nil, fmt.Errorf("cluster.encrypt_key_secondary[%d]: %w", i, err)
		}
		keys = append(keys, k)
	}
	kr, err := memberlist.NewKeyring(keys, primary)
	if err != nil {
		return nil, fmt.Errorf("cannot create the gossip keyring: %w", err)
	}
	return kr, nil
}

// SetGossipKeys changes the gossip keys of a running node: primary becomes
// the key gossip encrypts with, primary and secondary are the keys it
// decrypts with, and any other key is removed. Gossip must have been
// started with a key (cluster.encrypt_key): encryption cannot be turned on
// or off while running. Safe for concurrent use.
func (n *Node) SetGossipKeys(primary string, secondary []string) error {
	if !n.discReady.Load() {
		return ErrClosed
	}
	kr := n.disc.keyring()
	if kr == nil {
		return errors.New("cannot set gossip keys: gossip runs without encryption (set cluster.encrypt_key and restart)")
	}
	want := Config{EncryptKey: primary, SecondaryEncryptKeys: secondary}
	p, err := want.encryptKey()
	if err != nil {
		return fmt.Errorf("cannot set gossip keys: primary key: %w", err)
	}
	keep := map[string]bool{string(p): true}
	var add [][]byte
	for i, s := range secondary {
		k, err := decodeGossipKey(s)
		if err != nil {
			return fmt.Errorf("cannot set gossip keys: secondary key %d: %w", i, err)
		}
		keep[string(k)] = true
		add = append(add, k)
	}
	for _, k := range append([][]byte{p}, add...) {
		if err := kr.AddKey(k); err != nil {
			return fmt.Errorf("cannot install a gossip key: %w", err)
		}
	}
	if err := kr.UseKey(p); err != nil {
		return fmt.Errorf("cannot use the primary gossip key: %w", err)
	}
	for _, k := range kr.GetKeys() {
		if !keep[string(k)] {
			if err := kr.RemoveKey(k); err != nil {
				return fmt.Errorf("cannot remove a gossip key: %w", err)
			}
		}
	}
	n.log.Info("gossip keys changed", "keys", len(keep))
	return nil
}

// keyring returns memberlist's keyring (nil without encryption).
func (d *discovery) keyring() *memberlist.Keyring {
	return d.kr
}
