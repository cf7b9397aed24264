package jobs

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// labelDockerfile is the name of the Dockerfile gantry adds to a build context: the project's
// own with one LABEL instruction appended. It is listed in .dockerignore so COPY never puts it
// in the image.
const labelDockerfile = ".gantry-build.Dockerfile"

// withLabels returns a copy of a build context whose extra Dockerfile sets every label in one
// LABEL instruction. The classic builder turns each API label into a step of its own, and each
// step is a layer commit: on this project's fuse-overlayfs engine about 2.5 s apiece, so four
// labels cost more than the rest of a code-only build. One instruction at the very end keeps
// every earlier step cacheable, since only it changes from commit to commit.
func withLabels(context *bytes.Buffer, dockerfile string, labels map[string]string) (*bytes.Buffer, error) {
	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	tr := tar.NewReader(bytes.NewReader(context.Bytes()))
	var original, ignore []byte
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		switch hdr.Name {
		case ".dockerignore":
			ignore = append([]byte{}, data...)
			continue // written below, amended
		case labelDockerfile:
			continue // the project's own file of that name would be shadowed anyway
		case dockerfile:
			original = data
		}
		if err := writeEntry(tw, hdr, data); err != nil {
			return nil, err
		}
	}
	switch {
	case ignore == nil:
		// The file exists only because of gantry: it must not reach the image either.
		ignore = []byte(".dockerignore\n")
	case !bytes.HasSuffix(ignore, []byte("\n")):
		ignore = append(ignore, '\n')
	}
	ignore = append(ignore, labelDockerfile+"\n"...)
	var df strings.Builder
	df.Write(original)
	df.WriteString("\nLABEL")
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		df.WriteString(" " + strconv.Quote(k) + "=" + strconv.Quote(labels[k]))
	}
	df.WriteString("\n")
	for name, data := range map[string][]byte{".dockerignore": ignore, labelDockerfile: []byte(df.String())} {
		if err := writeEntry(tw, &tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644}, data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	return &out, nil
}

func writeEntry(tw *tar.Writer, hdr *tar.Header, data []byte) error {
	hdr.Size = int64(len(data))
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("build context: %s: %w", hdr.Name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("build context: %s: %w", hdr.Name, err)
	}
	return nil
}
