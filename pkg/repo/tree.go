package repo

import (
	"bytes"
	"context"
	"encoding/binary"
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

// Tree blobs are "pxbtree2\n" and a compact binary encoding of each node (see encodeNode); "pxbtree1\n" blobs
// (one JSON node per line) from earlier versions are still read.
const (
	treeMagicV1 = "pxbtree1\n"
	treeMagic   = "pxbtree2\n"
)

// TreeBlobTarget is the size at which a directory listing is cut into another tree blob.
const TreeBlobTarget = 1 << 20

// TreeEncoder builds the tree blobs of one directory from its entries in name order.
type TreeEncoder struct {
	buf  []byte
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
	if len(e.buf) == 0 {
		e.buf = append(e.buf, treeMagic...)
	}
	e.buf = encodeNode(e.buf, n)
	e.n++
	if len(e.buf) >= TreeBlobTarget {
		return e.take(), nil
	}
	return nil, nil
}

// Finish returns the last tree blob, or nil when there is nothing left (an empty directory has no tree blobs).
func (e *TreeEncoder) Finish() []byte {
	if len(e.buf) == 0 {
		return nil
	}
	return e.take()
}

func (e *TreeEncoder) take() []byte {
	out := bytes.Clone(e.buf)
	e.buf = e.buf[:0]
	return out
}

var nodeTypes = []NodeType{NodeFile, NodeDir, NodeSymlink, NodeFifo, NodeSocket, NodeChar, NodeBlock}

func nodeTypeCode(t NodeType) byte {
	for i, nt := range nodeTypes {
		if nt == t {
			return byte(i)
		}
	}
	return 0xff // validateNode has refused it already
}

// encodeNode appends a node: uvarint-length-prefixed name, type byte, uvarint mode, uid, gid, zigzag varint
// mtime, uvarint dev, inode, links, zigzag varint ctime, uvarint size, then counted lists of content IDs,
// holes (uvarint offset and length), tree IDs, the length-prefixed symlink target, uvarint rdev and counted
// xattrs (length-prefixed name and value). Every integer has its shortest encoding, so a node has exactly one.
func encodeNode(buf []byte, n *Node) []byte {
	buf = appendBytes(buf, n.Name)
	buf = append(buf, nodeTypeCode(n.Type))
	buf = binary.AppendUvarint(buf, uint64(n.Mode))
	buf = binary.AppendUvarint(buf, uint64(n.UID))
	buf = binary.AppendUvarint(buf, uint64(n.GID))
	buf = binary.AppendVarint(buf, n.MTime)
	buf = binary.AppendUvarint(buf, n.Dev)
	buf = binary.AppendUvarint(buf, n.Inode)
	buf = binary.AppendUvarint(buf, n.Links)
	buf = binary.AppendVarint(buf, n.CTime)
	buf = binary.AppendUvarint(buf, uint64(n.Size))
	buf = appendIDs(buf, n.Content)
	buf = binary.AppendUvarint(buf, uint64(len(n.Holes)))
	for _, h := range n.Holes {
		buf = binary.AppendUvarint(buf, uint64(h.Off))
		buf = binary.AppendUvarint(buf, uint64(h.Len))
	}
	buf = appendIDs(buf, n.Tree)
	buf = appendBytes(buf, n.Target)
	buf = binary.AppendUvarint(buf, n.Rdev)
	buf = binary.AppendUvarint(buf, uint64(len(n.Xattrs)))
	for _, x := range n.Xattrs {
		buf = appendBytes(buf, x.Name)
		buf = appendBytes(buf, x.Value)
	}
	return buf
}

func appendBytes[T string | []byte](buf []byte, s T) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

func appendIDs(buf []byte, ids []ID) []byte {
	buf = binary.AppendUvarint(buf, uint64(len(ids)))
	for i := range ids {
		buf = append(buf, ids[i][:]...)
	}
	return buf
}

func (d *decoder) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.buf)
	if n <= 0 || n != uvarintLen(uint64(v<<1)^uint64(v>>63)) {
		d.err = fmt.Errorf("truncated or malformed %s", what)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

// count reads a list length, refusing one that cannot fit in what is left (each element takes at least size bytes).
func (d *decoder) count(size int, what string) int {
	return int(d.uvarint(uint64(len(d.buf)/size), what))
}

func (d *decoder) ids(what string) []ID {
	n := d.count(32, what+" count")
	if n == 0 || d.err != nil {
		return nil
	}
	raw := d.bytes(32*n, what)
	if d.err != nil {
		return nil
	}
	ids := make([]ID, n)
	for i := range ids {
		copy(ids[i][:], raw[32*i:])
	}
	return ids
}

func (d *decoder) str(what string) string {
	n := d.count(1, what+" length")
	return string(d.bytes(n, what))
}

func (d *decoder) node() Node {
	var n Node
	n.Name = d.str("name")
	t := d.bytes(1, "type")
	if d.err == nil {
		if int(t[0]) >= len(nodeTypes) {
			d.err = fmt.Errorf("entry %q: unknown type %d", n.Name, t[0])
			return n
		}
		n.Type = nodeTypes[t[0]]
	}
	n.Mode = uint32(d.uvarint(1<<32-1, "mode"))
	n.UID = uint32(d.uvarint(1<<32-1, "uid"))
	n.GID = uint32(d.uvarint(1<<32-1, "gid"))
	n.MTime = d.varint("mtime")
	n.Dev = d.uvarint(1<<64-1, "dev")
	n.Inode = d.uvarint(1<<64-1, "inode")
	n.Links = d.uvarint(1<<64-1, "links")
	n.CTime = d.varint("ctime")
	n.Size = int64(d.uvarint(1<<63-1, "size"))
	n.Content = d.ids("content")
	if nh := d.count(2, "hole count"); nh > 0 && d.err == nil {
		n.Holes = make([]Extent, nh)
		for i := range n.Holes {
			n.Holes[i].Off = int64(d.uvarint(1<<63-1, "hole offset"))
			n.Holes[i].Len = int64(d.uvarint(1<<63-1, "hole length"))
		}
	}
	n.Tree = d.ids("tree")
	n.Target = d.str("symlink target")
	n.Rdev = d.uvarint(1<<64-1, "rdev")
	if nx := d.count(2, "xattr count"); nx > 0 && d.err == nil {
		n.Xattrs = make([]Xattr, nx)
		for i := range n.Xattrs {
			n.Xattrs[i].Name = d.str("xattr name")
			n.Xattrs[i].Value = bytes.Clone(d.bytes(d.count(1, "xattr length"), "xattr value"))
			if n.Xattrs[i].Value == nil && d.err == nil {
				n.Xattrs[i].Value = []byte{}
			}
		}
	}
	return n
}

// DecodeTree parses one tree blob. Entries must be valid and in strictly increasing name order.
func DecodeTree(raw []byte) ([]Node, error) {
	var nodes []Node
	var err error
	switch {
	case bytes.HasPrefix(raw, []byte(treeMagic)):
		nodes, err = decodeTreeV2(raw[len(treeMagic):])
	case bytes.HasPrefix(raw, []byte(treeMagicV1)):
		nodes, err = decodeTreeV1(raw[len(treeMagicV1):])
	case bytes.HasPrefix(raw, []byte("pxbtree")):
		return nil, errors.New("tree format is newer than this pxb supports: upgrade pxb")
	default:
		return nil, errors.New("not a tree blob")
	}
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, errors.New("empty tree blob")
	}
	return nodes, nil
}

func decodeTreeV2(rest []byte) ([]Node, error) {
	d := &decoder{buf: rest}
	// A file's entry takes about 64 bytes; sizing for that saves copying the slice as it grows.
	nodes := make([]Node, 0, len(rest)/64+1)
	for len(d.buf) > 0 {
		n := d.node()
		if d.err != nil {
			return nil, fmt.Errorf("tree entry %d: %w", len(nodes), d.err)
		}
		if err := checkEntry(nodes, &n); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func checkEntry(nodes []Node, n *Node) error {
	if err := validateNode(n); err != nil {
		return fmt.Errorf("tree entry %d: %w", len(nodes), err)
	}
	if len(nodes) > 0 && n.Name <= nodes[len(nodes)-1].Name {
		return fmt.Errorf("tree entry %d: %q out of order", len(nodes), n.Name)
	}
	return nil
}

// decodeTreeV1 parses the JSON lines of a version 1 tree blob.
func decodeTreeV1(rest []byte) ([]Node, error) {
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
		if err := checkEntry(nodes, &n); err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
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

// WalkTree calls fn for each entry of a directory listing in name order, holding one of its blobs at a time.
func (r *Repository) WalkTree(ctx context.Context, tree []ID, fn func(*Node) error) error {
	return r.NewTreeFetcher(ctx).walk(ctx, tree, false, eachNode(fn))
}
