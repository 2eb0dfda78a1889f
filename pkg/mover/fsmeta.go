package mover

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/pxb-dev/pxb/pkg/repo"
)

// nodeFromStat fills the metadata of a node from lstat results.
func nodeFromStat(name string, st *unix.Stat_t) repo.Node {
	n := repo.Node{
		Name:  name,
		Mode:  st.Mode & 0o7777,
		UID:   st.Uid,
		GID:   st.Gid,
		MTime: st.Mtim.Nano(),
		CTime: st.Ctim.Nano(),
		Dev:   uint64(st.Dev),
		Inode: st.Ino,
		Links: uint64(st.Nlink),
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		n.Type = repo.NodeFile
		n.Size = st.Size
	case unix.S_IFDIR:
		n.Type = repo.NodeDir
		n.Links = 0 // a directory's link count only counts its subdirectories
	case unix.S_IFLNK:
		n.Type = repo.NodeSymlink
	case unix.S_IFIFO:
		n.Type = repo.NodeFifo
	case unix.S_IFSOCK:
		n.Type = repo.NodeSocket
	case unix.S_IFCHR:
		n.Type = repo.NodeChar
		n.Rdev = uint64(st.Rdev)
	case unix.S_IFBLK:
		n.Type = repo.NodeBlock
		n.Rdev = uint64(st.Rdev)
	}
	if n.Type != repo.NodeFile {
		n.Links = 0
	}
	return n
}

// readXattrs returns a path's extended attributes sorted by name; none where the file system has none.
func readXattrs(path string) ([]repo.Xattr, error) {
	return xattrsOf(path, func(b []byte) (int, error) { return unix.Llistxattr(path, b) },
		func(name string, b []byte) (int, error) { return unix.Lgetxattr(path, name, b) })
}

// readXattrsFd is readXattrs for an open file (path is for messages).
func readXattrsFd(fd int, path string) ([]repo.Xattr, error) {
	return xattrsOf(path, func(b []byte) (int, error) { return unix.Flistxattr(fd, b) },
		func(name string, b []byte) (int, error) { return unix.Fgetxattr(fd, name, b) })
}

func xattrsOf(path string, list func([]byte) (int, error), get func(string, []byte) (int, error)) ([]repo.Xattr, error) {
	// Sized first: most files have none, and a buffer for the names would cost every file an allocation
	// (it escapes through list).
	var names []byte
	for names == nil {
		sz, err := list(nil)
		if err == nil && sz > 0 {
			names = make([]byte, sz)
			sz, err = list(names)
			if errors.Is(err, unix.ERANGE) {
				names = nil // more names since sized
				continue
			}
			names = names[:sz]
		}
		switch {
		case errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.ENOENT):
			return nil, nil
		case err != nil:
			return nil, fmt.Errorf("list xattrs of %s: %w", path, err)
		case sz == 0:
			return nil, nil
		}
	}
	var out []repo.Xattr
	for len(names) > 0 {
		i := 0
		for i < len(names) && names[i] != 0 {
			i++
		}
		name := string(names[:i])
		if i < len(names) {
			i++
		}
		names = names[i:]
		if name == "" {
			continue
		}
		val, err := getXattr(get, name)
		if err != nil {
			if errors.Is(err, unix.ENODATA) {
				continue // removed since listing
			}
			return nil, fmt.Errorf("read xattr %s of %s: %w", name, path, err)
		}
		out = append(out, repo.Xattr{Name: name, Value: val})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func getXattr(get func(string, []byte) (int, error), name string) ([]byte, error) {
	var buf [256]byte
	sz, err := get(name, buf[:])
	if err == nil {
		return append([]byte{}, buf[:sz]...), nil
	}
	if !errors.Is(err, unix.ERANGE) {
		return nil, err
	}
	sz, err = get(name, nil)
	if err != nil {
		return nil, err
	}
	val := make([]byte, sz)
	sz, err = get(name, val)
	return val[:sz], err
}

// dataExtents returns the data regions of an open file using SEEK_DATA/SEEK_HOLE; a file system without hole
// reporting yields one extent covering the file.
func dataExtents(fd int, path string, size int64) ([]repo.Extent, error) {
	var out []repo.Extent
	var off int64
	for off < size {
		data, err := unix.Seek(fd, off, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, syscall.ENXIO) {
				break // only a hole remains
			}
			if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.EOPNOTSUPP) {
				return []repo.Extent{{Off: 0, Len: size}}, nil
			}
			return nil, fmt.Errorf("seek data in %s: %w", path, err)
		}
		if data >= size {
			break
		}
		hole, err := unix.Seek(fd, data, unix.SEEK_HOLE)
		if err != nil {
			return nil, fmt.Errorf("seek hole in %s: %w", path, err)
		}
		hole = min(hole, size)
		out = append(out, repo.Extent{Off: data, Len: hole - data})
		off = hole
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, fmt.Errorf("seek %s: %w", path, err)
	}
	return out, nil
}

// complement returns the parts of [0, size) outside the sorted, disjoint extents: the holes of a file's data
// extents, or the data extents of its holes.
func complement(extents []repo.Extent, size int64) []repo.Extent {
	var out []repo.Extent
	var off int64
	for _, e := range extents {
		if e.Off > off {
			out = append(out, repo.Extent{Off: off, Len: e.Off - off})
		}
		off = e.Off + e.Len
	}
	if off < size {
		out = append(out, repo.Extent{Off: off, Len: size - off})
	}
	return out
}

// fileAt reads a file descriptor at offsets (pread), for io.SectionReader.
type fileAt int

func (fd fileAt) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(int(fd), p[n:], off+int64(n))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}
