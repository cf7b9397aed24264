package jobs

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"path"
	"slices"
	"strings"

	"github.com/gantry-ci/gantry/orchestrator"
)

// buildContext is a project's build context, re-packed in memory from the source archive.
type buildContext struct {
	// tar is the context as the engine's /build endpoint takes it.
	tar bytes.Buffer
	// names holds every path of the context with its tar type flag.
	names map[string]byte
	// base holds the files the base tier sees (its Dockerfile and inputs), by path.
	base map[string]*contextFile
}

// contextFile is one kept entry of the context.
type contextFile struct {
	hdr  tar.Header
	data []byte
}

// errTooLarge is returned by countingReader once the limit is passed.
var errTooLarge = errors.New("source archive too large")

// countingReader fails once more than limit bytes were read, so that a large (or maliciously
// compressed) archive is refused before it fills the worker's memory.
type countingReader struct {
	r        io.Reader
	n, limit int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.limit {
		return n, errTooLarge
	}
	return n, err
}

// readContext unpacks a GitLab repository archive (a tar.gz whose entries sit under one
// top-level folder of an unpredictable name) into a build context: the first path component
// is stripped, only entries below dir are kept (re-rooted there), and the files named by base
// are collected as well. Nothing is written to disk.
func readContext(src io.Reader, dir string, base *orchestrator.BaseSpec, limit int64) (*buildContext, error) {
	dir = relPath(dir)
	gz, err := gzip.NewReader(src)
	if err != nil {
		return nil, fmt.Errorf("source archive: %w", err)
	}
	counted := &countingReader{r: gz, limit: limit}
	readFailed := func(err error) error {
		if counted.n > limit {
			return projectFault("source archive is larger than %d bytes", limit)
		}
		return fmt.Errorf("source archive: %w", err)
	}
	tr := tar.NewReader(counted)
	bc := &buildContext{names: map[string]byte{}, base: map[string]*contextFile{}}
	tw := tar.NewWriter(&bc.tar)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, readFailed(err)
		}
		name, ok := contextName(hdr.Name, dir)
		if !ok {
			continue
		}
		// git archive writes only these; pax global headers (the commit id) and anything
		// else have no place in a build context.
		if hdr.Typeflag != tar.TypeReg && hdr.Typeflag != tar.TypeDir && hdr.Typeflag != tar.TypeSymlink {
			continue
		}
		// A fresh header keeps the mode but drops the owner and the archive's pax records.
		f := &contextFile{hdr: tar.Header{
			Name: name, Typeflag: hdr.Typeflag, Mode: hdr.Mode, Linkname: hdr.Linkname, ModTime: hdr.ModTime,
		}}
		switch hdr.Typeflag {
		case tar.TypeDir:
			f.hdr.Name += "/"
		case tar.TypeReg:
			if f.data, err = io.ReadAll(tr); err != nil {
				return nil, readFailed(err)
			}
			f.hdr.Size = int64(len(f.data))
		}
		if err := tw.WriteHeader(&f.hdr); err != nil {
			return nil, fmt.Errorf("build context: %s: %w", name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, fmt.Errorf("build context: %s: %w", name, err)
		}
		bc.names[name] = hdr.Typeflag
		if base != nil && hdr.Typeflag != tar.TypeDir && baseSees(base, name) {
			bc.base[name] = f
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	if len(bc.names) == 0 {
		return nil, projectFault("build context %q not found in the source", dir)
	}
	return bc, nil
}

// contextName maps an archive entry to its path in the context, or reports false for an entry
// outside the context, including the top-level folder itself.
func contextName(name, dir string) (string, bool) {
	_, rest, ok := strings.Cut(strings.TrimPrefix(name, "./"), "/")
	if !ok {
		return "", false
	}
	rest = relPath(rest)
	if rest == "." {
		return "", false
	}
	if dir == "." {
		return rest, true
	}
	if rest, ok = strings.CutPrefix(rest, dir+"/"); !ok {
		return "", false
	}
	return rest, true
}

// relPath cleans a path relative to the context root; rooting it first means that ".." can
// never climb out of the tree.
func relPath(p string) string {
	if p = path.Clean("/" + p)[1:]; p == "" {
		return "."
	}
	return p
}

// baseSees reports whether the base tier's build sees the file name: its Dockerfile, an input,
// or a file below an input directory.
func baseSees(base *orchestrator.BaseSpec, name string) bool {
	if name == relPath(base.Dockerfile) {
		return true
	}
	for _, in := range base.Inputs {
		in = relPath(in)
		if name == in || strings.HasPrefix(name, in+"/") {
			return true
		}
	}
	return false
}

// baseContext packs the base tier's own context — only its Dockerfile and inputs — and returns
// it with its content hash, the full SHA-256 the base image is tagged by. The hash covers
// everything the base build is given, so that a base is reused only for the same build:
//   - which file is the Dockerfile (two inputs may swap roles);
//   - every file of the context: its path, tar type (a symlink is not a file with its target as
//     content), permission bits (COPY keeps them) and content or link target;
//   - the build args, which reach the base build too.
//
// Every field is length-prefixed and every list counted, so no two different builds can write
// the same byte stream. What it cannot cover is what the Dockerfile names from outside: the
// FROM image is a reference, resolved by the engine, so a newer upstream image under the same
// tag is picked up only when an input changes (or by a project that changes its Dockerfile).
func (bc *buildContext) baseContext(base *orchestrator.BaseSpec, args map[string]string) (*bytes.Buffer, string, error) {
	dockerfile := relPath(base.Dockerfile)
	if _, ok := bc.base[dockerfile]; !ok {
		return nil, "", projectFault("base Dockerfile %q not found in the build context", base.Dockerfile)
	}
	for _, in := range base.Inputs {
		if _, ok := bc.names[relPath(in)]; !ok {
			return nil, "", projectFault("base input %q not found in the build context", in)
		}
	}
	h := &baseHash{h: sha256.New()}
	h.string(baseHashVersion)
	h.string(dockerfile)
	h.number(len(bc.base))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(bc.base)) {
		f := bc.base[name]
		content := f.data
		if f.hdr.Typeflag == tar.TypeSymlink {
			content = []byte(f.hdr.Linkname)
		}
		h.string(name)
		h.bytes([]byte{f.hdr.Typeflag})
		h.number(int(f.hdr.Mode & 0o7777))
		h.bytes(content)
		if err := tw.WriteHeader(&f.hdr); err != nil {
			return nil, "", fmt.Errorf("base context: %s: %w", name, err)
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, "", fmt.Errorf("base context: %s: %w", name, err)
		}
	}
	h.number(len(args))
	for _, k := range slices.Sorted(maps.Keys(args)) {
		h.string(k)
		h.string(args[k])
	}
	if err := tw.Close(); err != nil {
		return nil, "", fmt.Errorf("base context: %w", err)
	}
	return &buf, hex.EncodeToString(h.h.Sum(nil)), nil
}

// baseHashVersion starts every base hash, so that a change to what the hash covers gives every
// base a new tag instead of a reused one built by the old rules.
const baseHashVersion = "gantry base v2"

// baseHash writes length-prefixed fields to a hash: one field's end can never pass as the next
// one's start.
type baseHash struct{ h hash.Hash }

func (b *baseHash) bytes(p []byte) {
	b.h.Write(binary.BigEndian.AppendUint64(nil, uint64(len(p))))
	b.h.Write(p)
}

func (b *baseHash) string(s string) { b.bytes([]byte(s)) }

// number writes a count or a mode, fixed-width.
func (b *baseHash) number(n int) { b.h.Write(binary.BigEndian.AppendUint64(nil, uint64(n))) }
