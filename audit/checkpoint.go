package audit

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/agw-dev/agw/store"
)

// Checkpoints anchor the audit trail's hash chain outside the store.
//
// The chain alone proves only that the records agree with each other:
// whoever can write the store can edit a record and re-hash every later
// one, delete the newest records, or put back an older copy of the whole
// store, and the chain still verifies. A checkpoint is the chain's head
// (the newest sequence number and its hash) at a moment, signed with an
// Ed25519 key that is not in the store, and appended to a file beside it;
// each is also written to the log, and `agw audit checkpoint` prints the
// newest for safekeeping elsewhere. Verifying against the checkpoints
// detects all three: a re-hashed record no longer has the checkpointed
// hash, and a truncated or restored trail ends before the newest
// checkpoint.
//
// What it cannot do: someone who is root on the gateway host can also
// delete the key and the checkpoint file and write new ones. Only
// checkpoints kept off the host (shipped logs, a copy of `agw audit
// checkpoint` in another system) catch that.

// Checkpoint is a signed statement of the audit chain's head.
type Checkpoint = store.AuditCheckpoint

// Signer signs checkpoints with the daemon's audit key.
type Signer struct {
	key ed25519.PrivateKey
	id  string
}

// KeyFile is the signing key's file in the data directory.
const KeyFile = "audit-signing.key"

// CheckpointFile is where checkpoints are appended, one JSON object a line.
const CheckpointFile = "audit-checkpoints.jsonl"

// LoadOrCreateSigner reads the PEM-less base64 seed in path, creating a
// new key (0600) when the file does not exist.
func LoadOrCreateSigner(path string) (*Signer, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		seed := make([]byte, ed25519.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("create audit signing key: %w", err)
		}
		if _, err := f.WriteString(base64.StdEncoding.EncodeToString(seed) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("write audit signing key: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, err
		}
		if err := f.Close(); err != nil {
			return nil, err
		}
		return newSigner(seed), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit signing key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signing key %s is damaged: restore it from a backup, or move it away to start a new key (older checkpoints then verify only with the old key)", path)
	}
	return newSigner(seed), nil
}

func newSigner(seed []byte) *Signer {
	k := ed25519.NewKeyFromSeed(seed)
	return &Signer{key: k, id: keyID(k.Public().(ed25519.PublicKey))}
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Public is the verification key.
func (s *Signer) Public() ed25519.PublicKey { return s.key.Public().(ed25519.PublicKey) }

// Sign fills in c's key id and signature.
func (s *Signer) Sign(c *Checkpoint) {
	c.KeyID = s.id
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.key, payload(c)))
}

// VerifySignature checks c's signature against pub.
func VerifySignature(c *Checkpoint, pub ed25519.PublicKey) error {
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || c.KeyID != keyID(pub) || !ed25519.Verify(pub, payload(c), sig) {
		return fmt.Errorf("checkpoint at seq %d (%s) has no valid signature by this gateway's audit key", c.Seq, c.Time.Format(time.RFC3339))
	}
	return nil
}

// AppendCheckpoint appends c to the checkpoint file at path and syncs it.
func AppendCheckpoint(path string, c *Checkpoint) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open checkpoint file: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync checkpoint file: %w", err)
	}
	return f.Close()
}

// ReadCheckpoints reads every checkpoint in the file at path (none when it
// does not exist). A line that does not parse is an error naming it.
func ReadCheckpoints(path string) ([]Checkpoint, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Checkpoint
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		var c Checkpoint
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return out, fmt.Errorf("checkpoint file %s line %d does not parse: %v", path, n, err)
		}
		out = append(out, c)
	}
	return out, sc.Err()
}

// Head returns the audit chain's newest record (Seq 0 for an empty trail).
func Head(ctx context.Context, st store.Store) (store.AuditEvent, error) {
	var head store.AuditEvent
	err := st.QueryAudit(ctx, store.AuditQuery{Last: 1}, func(ev store.AuditEvent) bool { head = ev; return false })
	return head, err
}

// VerifyCheckpoints checks the trail in st against checkpoints signed with
// pub: each checkpoint's record must still be there with the checkpointed
// hash (unless retention removed it), and the trail must reach the newest
// checkpoint. The error wraps store.ErrAuditTampered and says what it
// found; checked is how many checkpoints applied.
func VerifyCheckpoints(ctx context.Context, st store.Store, cps []Checkpoint, pub ed25519.PublicKey) (checked int, err error) {
	if len(cps) == 0 {
		return 0, nil
	}
	head, err := Head(ctx, st)
	if err != nil {
		return 0, err
	}
	oldest := uint64(0)
	if err := st.QueryAudit(ctx, store.AuditQuery{Limit: 1}, func(ev store.AuditEvent) bool { oldest = ev.Seq; return false }); err != nil {
		return 0, err
	}
	for i := range cps {
		c := &cps[i]
		if err := VerifySignature(c, pub); err != nil {
			return checked, fmt.Errorf("%w: %v (the checkpoint file was altered)", store.ErrAuditTampered, err)
		}
		if c.Seq == 0 {
			continue
		}
		if c.Seq > head.Seq {
			return checked, fmt.Errorf("%w: the trail ends at seq %d, but it reached seq %d at the checkpoint of %s: the newest records were removed, or an older copy of the store was put back",
				store.ErrAuditTampered, head.Seq, c.Seq, c.Time.Format(time.RFC3339))
		}
		if c.Seq < oldest {
			continue // removed by retention; the chain verifies from its anchor
		}
		var rec *store.AuditEvent
		if err := st.QueryAudit(ctx, store.AuditQuery{AfterSeq: c.Seq - 1, Limit: 1}, func(ev store.AuditEvent) bool { rec = &ev; return false }); err != nil {
			return checked, err
		}
		switch {
		case rec == nil || rec.Seq != c.Seq:
			return checked, fmt.Errorf("%w: record %d, checkpointed at %s, is missing", store.ErrAuditTampered, c.Seq, c.Time.Format(time.RFC3339))
		case rec.Hash != c.Hash:
			return checked, fmt.Errorf("%w: record %d no longer has the hash checkpointed at %s: it, or a record before it, was changed and the chain re-hashed",
				store.ErrAuditTampered, c.Seq, c.Time.Format(time.RFC3339))
		}
		checked++
	}
	return checked, nil
}

// payload is the exact text a checkpoint's signature covers.
func payload(c *Checkpoint) []byte {
	return []byte("agw audit checkpoint v1\n" + strconv.FormatUint(c.Seq, 10) + "\n" + c.Hash + "\n" +
		c.Time.UTC().Format(time.RFC3339Nano) + "\n" + c.Writer + "\n")
}

// Checkpointer writes a checkpoint when the trail has grown since the last.
type Checkpointer struct {
	Store  store.Store
	Signer *Signer
	Path   string // the checkpoint file
	Logger *slog.Logger
	Now    func() time.Time

	mu     sync.Mutex
	last   uint64
	loaded bool
}

// Checkpoint signs the chain's head now, appends it to the file and the
// log, and returns it. With onlyIfNew, nothing is written when the head
// is the one last checkpointed (it then returns nil, nil).
func (c *Checkpointer) Checkpoint(ctx context.Context, onlyIfNew bool) (*Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.loaded {
		if cps, err := ReadCheckpoints(c.Path); err == nil && len(cps) > 0 {
			c.last = cps[len(cps)-1].Seq
		}
		c.loaded = true
	}
	head, err := Head(ctx, c.Store)
	if err != nil {
		return nil, fmt.Errorf("read the audit chain's head: %w", err)
	}
	if onlyIfNew && head.Seq == c.last {
		return nil, nil
	}
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	cp := &Checkpoint{Seq: head.Seq, Hash: head.Hash, Time: now().UTC()}
	c.Signer.Sign(cp)
	if err := AppendCheckpoint(c.Path, cp); err != nil {
		return nil, err
	}
	c.last = head.Seq
	if c.Logger != nil {
		c.Logger.Info("audit checkpoint", "seq", cp.Seq, "hash", cp.Hash, "time", cp.Time, "key_id", cp.KeyID, "signature", cp.Signature)
	}
	return cp, nil
}

// CheckpointEvery is how often Run checkpoints a grown trail.
const CheckpointEvery = time.Minute

// Run checkpoints every CheckpointEvery while the trail grows, and once
// more when ctx is done.
func (c *Checkpointer) Run(ctx context.Context) error {
	t := time.NewTicker(CheckpointEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := c.Checkpoint(ctx, true); err != nil && ctx.Err() == nil && c.Logger != nil {
			c.Logger.Error("audit checkpoint", "err", err)
		}
	}
}
