// Command tamper edits or deletes one audit record of a stopped agw store
// behind the store's back, so tests can prove that agw audit verify notices.
// It is built only by tests (e2e) and is no part of the agw binary. It
// knows the audit key layout of store/badgerstore (keys.go): e/<seq> with
// seq as 8 big-endian bytes; values are read and written through
// internal/auditvalue, as the store does.
//
//	tamper -dir DATA/db -edit SEQ     rewrite the record's reason field
//	tamper -dir DATA/db -delete SEQ   remove the record
//	tamper -dir DATA/db -rehash SEQ   rewrite the reason and re-hash the
//	                                  chain from there on, so it verifies
package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store"
	"github.com/agw-dev/agw/store/badgerstore/internal/auditvalue"
)

func main() {
	dir := flag.String("dir", "", "the Badger directory (DATA/db)")
	edit := flag.Uint64("edit", 0, "`seq` of the record to edit")
	del := flag.Uint64("delete", 0, "`seq` of the record to delete")
	rehash := flag.Uint64("rehash", 0, "`seq` of the record to edit, re-hashing every later record")
	flag.Parse()
	var err error
	if *rehash != 0 {
		err = runRehash(*dir, *rehash)
	} else {
		err = run(*dir, *edit, *del)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "tamper:", err)
		os.Exit(1)
	}
}

func auditKey(seq uint64) []byte { return binary.BigEndian.AppendUint64([]byte("e/"), seq) }

func run(dir string, edit, del uint64) error {
	if dir == "" || (edit == 0) == (del == 0) {
		return errors.New("give -dir and one of -edit SEQ or -delete SEQ")
	}
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return err
	}
	err = db.Update(func(txn *badger.Txn) error {
		if del != 0 {
			if _, err := txn.Get(auditKey(del)); err != nil {
				return fmt.Errorf("seq %d: %w", del, err)
			}
			return txn.Delete(auditKey(del))
		}
		item, err := txn.Get(auditKey(edit))
		if err != nil {
			return fmt.Errorf("seq %d: %w", edit, err)
		}
		raw, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		js, err := auditvalue.Decode(nil, raw)
		if err != nil {
			return err
		}
		var rec map[string]any
		if err := json.Unmarshal(js, &rec); err != nil {
			return err
		}
		rec["reason"] = "edited behind agw's back"
		out, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return txn.Set(auditKey(edit), auditvalue.Append(nil, out))
	})
	return errors.Join(err, db.Close())
}

// runRehash edits the record at seq and recomputes the hash chain from it
// to the newest record, the way the store computes it
// (hex(SHA-256(prev_hash || JSON without hash))), so that the chain alone
// no longer shows the edit.
func runRehash(dir string, seq uint64) error {
	db, err := badger.Open(badger.DefaultOptions(dir).WithLogger(nil))
	if err != nil {
		return err
	}
	err = db.Update(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: []byte("e/")})
		defer it.Close()
		prev := ""
		first := true
		for it.Seek(auditKey(seq)); it.Valid(); it.Next() {
			raw, err := it.Item().ValueCopy(nil)
			if err != nil {
				return err
			}
			js, err := auditvalue.Decode(nil, raw)
			if err != nil {
				return err
			}
			var ev store.AuditEvent
			if err := json.Unmarshal(js, &ev); err != nil {
				return err
			}
			if first {
				ev.Reason = "edited behind agw's back"
				prev, first = ev.PrevHash, false
			}
			ev.PrevHash, ev.Hash = prev, ""
			canon, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			sum := sha256.Sum256(append([]byte(prev), canon...))
			ev.Hash = hex.EncodeToString(sum[:])
			out, err := json.Marshal(ev)
			if err != nil {
				return err
			}
			if err := txn.Set(it.Item().KeyCopy(nil), auditvalue.Append(nil, out)); err != nil {
				return err
			}
			prev = ev.Hash
		}
		if first {
			return fmt.Errorf("seq %d: no such record", seq)
		}
		return nil
	})
	return errors.Join(err, db.Close())
}
