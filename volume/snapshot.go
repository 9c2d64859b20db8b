package volume

import "strconv"

// Snapshot names a volume's state after LSN: the volume VID as of its commit
// LSN, whose logical size is PageCount pages. LSN 0 is the empty volume before
// any commit.
type Snapshot struct {
	VID       ID
	LSN       LSN
	PageCount uint32
}

// String returns the snapshot as "vid@lsn/pages", for example
// "3LTmhAe8ZLTyrvT2yAdVdZ@12/100": the base58 volume ID, '@', the LSN in
// decimal, '/', and the page count in decimal. It is meant for logs and
// messages.
func (s Snapshot) String() string {
	b := make([]byte, 0, IDTextLen+1+20+1+10)
	b = append(b, s.VID.String()...)
	b = append(b, '@')
	b = strconv.AppendUint(b, uint64(s.LSN), 10)
	b = append(b, '/')
	b = strconv.AppendUint(b, uint64(s.PageCount), 10)
	return string(b)
}
