package history

// Event kinds (Op.F) of the quarantine nemesis (jepsen/nemesis), which
// checker.Quarantine reads. One window is, in order: a plant, then status,
// probe and flush events (concurrent ones under distinct processes), then
// a heal and a resume. The nemesis's commits and reads of volumes are
// recorded as ordinary "commit" and "read" events.
const (
	// FQuarantinePlant: a conflicting object was put at Key, the next log
	// key (LSN) of volume VID. Fail or Info: nothing was planted.
	FQuarantinePlant = "quarantine-plant"
	// FQuarantineStatus: node Node listed VID as quarantined (ok; Key is
	// the key it named), or did not within the wait (fail, Error says what
	// it listed), or could not be asked (info).
	FQuarantineStatus = "quarantine-status"
	// FQuarantineProbe: a commit to VID on its head (Base, Hash) while it
	// was quarantined; Error is the answer (fail: refused; ok: accepted at
	// LSN; info: no answer).
	FQuarantineProbe = "quarantine-probe"
	// FQuarantineFlush: another volume VID, whose head was LSN and whose
	// flushed watermark in the bucket Base when the quarantine began,
	// reached LSN in the bucket (ok; Head is what it reached) or did not
	// within the wait (fail: Head is where it stayed).
	FQuarantineFlush = "quarantine-flush"
	// FQuarantineHeal: the planted object was removed and the quarantine
	// lifted (ok), or not (fail/info, Error).
	FQuarantineHeal = "quarantine-heal"
	// FQuarantineResume: after the heal, VID's flushed watermark in the
	// bucket reached its head LSN (ok; Head is what it reached) or did not
	// within the wait (fail).
	FQuarantineResume = "quarantine-resume"
)
