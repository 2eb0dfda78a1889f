package repo

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// NodeType is the kind of a file-system entry.
type NodeType string

const (
	NodeFile    NodeType = "file"
	NodeDir     NodeType = "dir"
	NodeSymlink NodeType = "symlink"
	NodeFifo    NodeType = "fifo"
	NodeSocket  NodeType = "socket"
	NodeChar    NodeType = "chardev"
	NodeBlock   NodeType = "blockdev"
)

// Extent is a byte range of a file.
type Extent struct {
	Off int64 `json:"off"`
	Len int64 `json:"len"`
}

// Xattr is an extended attribute.
type Xattr struct {
	Name  string `json:"name"`
	Value []byte `json:"value"`
}

// Node is one entry of a directory listing.
type Node struct {
	Name  string   `json:"name"`
	Type  NodeType `json:"type"`
	Mode  uint32   `json:"mode"` // permission bits plus setuid (04000), setgid (02000), sticky (01000)
	UID   uint32   `json:"uid"`
	GID   uint32   `json:"gid"`
	MTime int64    `json:"mtime"` // ns since the epoch
	// Identity and change time make incremental backups safe; Links > 1 with the same Dev/Inode marks hard links.
	Dev   uint64 `json:"dev,omitempty"`
	Inode uint64 `json:"inode,omitempty"`
	Links uint64 `json:"links,omitempty"`
	CTime int64  `json:"ctime,omitempty"`
	Size  int64  `json:"size,omitempty"`
	// Content is the file's chunks in order, covering the bytes outside Holes.
	Content []ID     `json:"content,omitempty"`
	Holes   []Extent `json:"holes,omitempty"`
	// Tree is a directory's listing: tree blobs holding consecutive runs of its sorted entries.
	Tree   []ID    `json:"tree,omitempty"`
	Target string  `json:"target,omitempty"` // symlink target
	Rdev   uint64  `json:"rdev,omitempty"`
	Xattrs []Xattr `json:"xattrs,omitempty"`
}

const treeMagic = "pxbtree1\n"

// TreeBlobTarget is the size at which a directory listing is cut into another tree blob.
const TreeBlobTarget = 1 << 20

// TreeEncoder builds the tree blobs of one directory from its entries in name order.
type TreeEncoder struct {
	buf  bytes.Buffer
	last string
	n    int
}

// Add appends a node; it returns a finished tree blob when the current one reached TreeBlobTarget.
func (e *TreeEncoder) Add(n *Node) ([]byte, error) {
	if err := validateNode(n); err != nil {
		return nil, err
	}
	if e.n > 0 && n.Name <= e.last {
		return nil, fmt.Errorf("tree entries out of order: %q after %q", n.Name, e.last)
	}
	e.last = n.Name
	if e.buf.Len() == 0 {
		e.buf.WriteString(treeMagic)
	}
	raw, err := json.Marshal(n)
	if err != nil {
		return nil, err
	}
	e.buf.Write(raw)
	e.buf.WriteByte('\n')
	e.n++
	if e.buf.Len() >= TreeBlobTarget {
		return e.take(), nil
	}
	return nil, nil
}

// Finish returns the last tree blob, or nil when there is nothing left (an empty directory has no tree blobs).
func (e *TreeEncoder) Finish() []byte {
	if e.buf.Len() == 0 {
		return nil
	}
	return e.take()
}

func (e *TreeEncoder) take() []byte {
	out := bytes.Clone(e.buf.Bytes())
	e.buf.Reset()
	return out
}

// DecodeTree parses one tree blob. Entries must be valid and in strictly increasing name order.
func DecodeTree(raw []byte) ([]Node, error) {
	rest, ok := bytes.CutPrefix(raw, []byte(treeMagic))
	if !ok {
		if bytes.HasPrefix(raw, []byte("pxbtree")) {
			return nil, errors.New("tree format is newer than this pxb supports: upgrade pxb")
		}
		return nil, errors.New("not a tree blob")
	}
	var nodes []Node
	for len(rest) > 0 {
		line, tail, ok := bytes.Cut(rest, []byte{'\n'})
		if !ok {
			return nil, errors.New("tree blob truncated: last entry has no newline")
		}
		rest = tail
		var n Node
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&n); err != nil {
			return nil, fmt.Errorf("tree entry %d: %w", len(nodes), err)
		}
		if _, err := dec.Token(); err != io.EOF {
			return nil, fmt.Errorf("tree entry %d: trailing data", len(nodes))
		}
		if err := validateNode(&n); err != nil {
			return nil, fmt.Errorf("tree entry %d: %w", len(nodes), err)
		}
		if len(nodes) > 0 && n.Name <= nodes[len(nodes)-1].Name {
			return nil, fmt.Errorf("tree entry %d: %q out of order", len(nodes), n.Name)
		}
		nodes = append(nodes, n)
	}
	if len(nodes) == 0 {
		return nil, errors.New("empty tree blob")
	}
	return nodes, nil
}

// validateNode rejects names and values a restore must never act on.
func validateNode(n *Node) error {
	if n.Name == "" || n.Name == "." || n.Name == ".." || strings.ContainsAny(n.Name, "/\x00") {
		return fmt.Errorf("invalid entry name %q", n.Name)
	}
	switch n.Type {
	case NodeFile, NodeDir, NodeSymlink, NodeFifo, NodeSocket, NodeChar, NodeBlock:
	default:
		return fmt.Errorf("entry %q: unknown type %q", n.Name, n.Type)
	}
	if n.Mode&^0o7777 != 0 {
		return fmt.Errorf("entry %q: invalid mode %o", n.Name, n.Mode)
	}
	if n.Size < 0 {
		return fmt.Errorf("entry %q: negative size", n.Name)
	}
	var end int64
	for _, h := range n.Holes {
		if h.Off < end || h.Len <= 0 || h.Off+h.Len > n.Size || h.Off+h.Len < h.Off {
			return fmt.Errorf("entry %q: invalid hole %d+%d", n.Name, h.Off, h.Len)
		}
		end = h.Off + h.Len
	}
	if n.Type != NodeFile && (len(n.Content) > 0 || len(n.Holes) > 0) {
		return fmt.Errorf("entry %q: a %s has content", n.Name, n.Type)
	}
	if n.Type != NodeDir && len(n.Tree) > 0 {
		return fmt.Errorf("entry %q: a %s has a tree", n.Name, n.Type)
	}
	return nil
}

// WalkTree calls fn for each entry of a directory listing in name order, loading one tree blob at a time.
func (r *Repository) WalkTree(ctx context.Context, tree []ID, fn func(*Node) error) error {
	var buf []byte
	for _, id := range tree {
		raw, err := r.LoadBlob(ctx, id, buf)
		if err != nil {
			return err
		}
		buf = raw
		nodes, err := DecodeTree(raw)
		if err != nil {
			return fmt.Errorf("tree blob %s: %w", id, err)
		}
		for i := range nodes {
			if err := fn(&nodes[i]); err != nil {
				return err
			}
		}
	}
	return nil
}
