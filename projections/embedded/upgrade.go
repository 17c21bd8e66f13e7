package embedded

import (
	"bytes"
	"encoding/binary"

	bolt "go.etcd.io/bbolt"
)

// rebuildChunk bounds the attempts one rebuild transaction reads, so that a
// large file does not need one huge transaction.
const rebuildChunk = 20_000

// upgrade creates missing buckets and brings a file of an older layout up
// to layoutVersion, rebuilding chunk attempts per transaction.
func upgrade(db *bolt.DB, chunk int) error {
	var version uint32
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketAttempts, bucketIndex, bucketDays, bucketStats, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		if v := tx.Bucket(bucketMeta).Get(keyLayout); len(v) == 4 {
			version = binary.BigEndian.Uint32(v)
		} else if k, _ := tx.Bucket(bucketAttempts).Cursor().First(); k == nil {
			version = layoutVersion // a new file
			return setLayout(tx)
		}
		return nil
	})
	if err != nil || version >= layoutVersion {
		return err
	}
	return rebuild(db, chunk)
}

func setLayout(tx *bolt.Tx) error {
	return tx.Bucket(bucketMeta).Put(keyLayout, binary.BigEndian.AppendUint32(nil, layoutVersion))
}

// rebuild derives index, days and stats from the attempts alone: the
// attempts are the truth and everything else is a projection of them. It
// records the layout only at the end, so that a rebuild cut short starts
// over at the next Open.
func rebuild(db *bolt.DB, chunk int) error {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketIndex, bucketDays, bucketStats} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var after []byte // the last attempt key done
	for more := true; more; {
		err := db.Update(func(tx *bolt.Tx) error {
			var err error
			after, more, err = rebuildChunkAfter(tx, after, chunk)
			return err
		})
		if err != nil {
			return err
		}
	}
	return db.Update(setLayout)
}

// rebuildChunkAfter accounts up to chunk attempts that follow the key
// after (from the first when nil).
func rebuildChunkAfter(tx *bolt.Tx, after []byte, chunk int) (last []byte, more bool, err error) {
	l := newLedger(tx)
	c := l.attempts.Cursor()
	k, v := c.First()
	if after != nil {
		if k, v = c.Seek(after); bytes.Equal(k, after) {
			k, v = c.Next()
		}
	}
	for done := 0; k != nil; k, v = c.Next() {
		if done == chunk {
			return last, true, l.flush()
		}
		a, err := decode(v)
		if err != nil {
			return nil, false, err
		}
		if err := l.account(a, k); err != nil {
			return nil, false, err
		}
		last, done = bytes.Clone(k), done+1
	}
	return last, false, l.flush()
}
