// Command tamper edits or deletes one audit record of a stopped agw store
// behind the store's back, so tests can prove that agw audit verify notices.
// It is built only by tests (e2e) and is no part of the agw binary. It
// knows the audit key layout of store/badgerstore (keys.go): e/<seq> with
// seq as 8 big-endian bytes; values are read and written through
// internal/auditvalue, as the store does.
//
//	tamper -dir DATA/db -edit SEQ     rewrite the record's reason field
//	tamper -dir DATA/db -delete SEQ   remove the record
package main

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"

	"github.com/dgraph-io/badger/v4"

	"github.com/agw-dev/agw/store/badgerstore/internal/auditvalue"
)

func main() {
	dir := flag.String("dir", "", "the Badger directory (DATA/db)")
	edit := flag.Uint64("edit", 0, "`seq` of the record to edit")
	del := flag.Uint64("delete", 0, "`seq` of the record to delete")
	flag.Parse()
	if err := run(*dir, *edit, *del); err != nil {
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
