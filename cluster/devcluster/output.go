package devcluster

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// maxLine is the longest output line copied as one; longer lines are split
// into several prefixed lines.
const maxLine = 64 << 10

// copyOutput copies a node's output from r, line by line, to LogOutput with
// the "n{i} | " prefix and to node.log without it, until r reports EOF or is
// closed. Copying is best effort: write errors are logged once and the
// output is still drained so the node never blocks on a full pipe.
func (n *node) copyOutput(r io.Reader) {
	br := bufio.NewReaderSize(r, maxLine)
	prefix := []byte(n.id + " | ")
	var buf []byte
	var outFailed, fileFailed bool
	for {
		frag, err := br.ReadSlice('\n')
		if len(frag) > 0 {
			buf = append(append(buf[:0], prefix...), frag...)
			if !bytes.HasSuffix(buf, []byte("\n")) {
				buf = append(buf, '\n')
			}
			if werr := n.c.writeOutput(buf); werr != nil && !outFailed {
				outFailed = true
				n.log.Warn("copy node output", "err", werr)
			}
			if n.logFile != nil {
				if _, werr := n.logFile.Write(buf[len(prefix):]); werr != nil && !fileFailed {
					fileFailed = true
					n.log.Warn("append node log", "path", n.logPath(), "err", werr)
				}
			}
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
			return // io.EOF, or the pipe was closed after the node exited
		}
	}
}

// writeOutput writes one whole line to LogOutput, serialized across nodes.
func (c *Cluster) writeOutput(line []byte) error {
	c.outMu.Lock()
	defer c.outMu.Unlock()
	_, err := c.cfg.LogOutput.Write(line)
	return err
}
