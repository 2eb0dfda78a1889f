// Command mkimage writes a container image tarball (docker-archive, importable with
// `ctr images import`) holding static binaries on a minimal distroless-like base: CA certificates for TLS
// to object stores, /tmp, and passwd/group entries. It needs no container engine and no registry.
package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// files collects repeated -file SRC:DST flags.
type files []string

func (f *files) String() string     { return strings.Join(*f, ",") }
func (f *files) Set(v string) error { *f = append(*f, v); return nil }

func main() {
	var (
		out        = flag.String("o", "", "output tarball")
		tag        = flag.String("tag", "", "image reference, e.g. pxb.local/pxb-job:dev")
		arch       = flag.String("arch", "amd64", "architecture of the binaries, recorded in the image config (amd64, arm64)")
		entrypoint = flag.String("entrypoint", "", "entrypoint path inside the image")
		caCerts    = flag.String("ca-certs", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied into the image (empty: none)")
		add        files
	)
	flag.Var(&add, "file", "SRC:DST file to add (repeatable); executables keep their mode")
	flag.Parse()
	if err := run(*out, *tag, *arch, *entrypoint, *caCerts, add); err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
}

func run(out, tag, arch, entrypoint, caCerts string, add []string) error {
	if out == "" || tag == "" || entrypoint == "" {
		return errors.New("-o, -tag and -entrypoint are required")
	}
	if arch != "amd64" && arch != "arm64" {
		return fmt.Errorf("-arch %q: want amd64 or arm64", arch)
	}
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("parse tag %q: %w", tag, err)
	}
	layer, err := buildLayer(caCerts, add)
	if err != nil {
		return err
	}
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(layer)), nil })
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	img, err := mutate.AppendLayers(empty.Image, l)
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	cfg = cfg.DeepCopy()
	cfg.OS, cfg.Architecture = "linux", arch
	cfg.Config = v1.Config{
		Entrypoint: []string{entrypoint},
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt", "HOME=/tmp"},
		WorkingDir: "/",
	}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	if err := os.MkdirAll(path.Dir(out), 0o755); err != nil {
		return fmt.Errorf("create output dir: %w", err)
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return os.Rename(tmp, out)
}

// buildLayer returns the single layer: base directories and files, then the added files.
func buildLayer(caCerts string, add []string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A fixed time keeps the layer digest stable across builds of the same binaries.
	mtime := time.Unix(0, 0)
	dirs := map[string]bool{}
	mkdir := func(dir string, mode int64) error {
		for _, d := range parents(dir) {
			if dirs[d] {
				continue
			}
			dirs[d] = true
			m := int64(0o755)
			if d == dir {
				m = mode
			}
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: m, ModTime: mtime}); err != nil {
				return fmt.Errorf("tar %s: %w", d, err)
			}
		}
		return nil
	}
	file := func(dst string, mode int64, data []byte) error {
		if err := mkdir(path.Dir(dst), 0o755); err != nil {
			return err
		}
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: dst, Mode: mode, Size: int64(len(data)), ModTime: mtime}
		if err := tw.WriteHeader(hdr); err != nil {
			return fmt.Errorf("tar %s: %w", dst, err)
		}
		if _, err := tw.Write(data); err != nil {
			return fmt.Errorf("tar %s: %w", dst, err)
		}
		return nil
	}
	if err := mkdir("tmp", 0o1777); err != nil {
		return nil, err
	}
	if err := file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")); err != nil {
		return nil, err
	}
	if err := file("etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")); err != nil {
		return nil, err
	}
	if caCerts != "" {
		data, err := os.ReadFile(caCerts)
		if err != nil {
			return nil, fmt.Errorf("read CA bundle: %w", err)
		}
		if err := file("etc/ssl/certs/ca-certificates.crt", 0o644, data); err != nil {
			return nil, err
		}
	}
	for _, spec := range add {
		src, dst, ok := strings.Cut(spec, ":")
		if !ok || src == "" || dst == "" {
			return nil, fmt.Errorf("bad -file %q: want SRC:DST", spec)
		}
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("add %s: %w", src, err)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("add %s: %w", src, err)
		}
		if err := file(strings.TrimPrefix(path.Clean(dst), "/"), int64(st.Mode().Perm()), data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}

// parents lists dir and its ancestors, outermost first ("a/b" -> "a", "a/b").
func parents(dir string) []string {
	dir = strings.Trim(path.Clean(dir), "/")
	if dir == "" || dir == "." {
		return nil
	}
	var out []string
	for i := 0; i <= len(dir); i++ {
		if i == len(dir) || dir[i] == '/' {
			out = append(out, dir[:i])
		}
	}
	return out
}
