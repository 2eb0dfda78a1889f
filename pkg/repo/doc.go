// Package repo is the pxb backup repository: deduplicated, compressed, encrypted storage of file trees on a
// gocloud.dev blob bucket (S3, Azure Blob, GCS, or a directory).
//
// # Objects
//
// Every object is written once under a name that is never reused, so S3 object lock (retention) can protect
// all of them; Options.ObjectLock sets a retention date on each write (lock leases excepted, as they are
// deleted when released). The names are built and parsed in pkg/layout (layout.Config, layout.KeyName,
// layout.PackName, ...), whose package doc draws the whole of a location's bucket; what they hold is
// described here:
//
//	config                     repository settings (Config), sealed with the master key
//	keys/<32 hex>              key slots: the master key sealed under argon2id(passphrase, salt), JSON
//	data/<2 hex>/<32 hex>      packs of blobs, under the first two hex digits of the pack ID
//	index/<32 hex>             pack indexes
//	snapshots/<time>-<16 hex>  snapshot manifests; <time> is the snapshot's time in UTC, 20060102T150405Z
//	locks/<32 hex>             leases of writers (shared) and of garbage collection (exclusive)
//
// In a directory bucket, a create-only write puts the object under <name>.<16 hex>.tmp and links it to its
// name; listings skip every name ending in .tmp, which is also what an upload killed midway leaves.
//
// # Keys and encryption
//
// Init draws a random 32-byte master key. Each key slot stores it sealed with AES-256-GCM under a key derived
// from a passphrase by argon2id with the slot's own salt and cost parameters, so passphrases are added, removed
// and changed (AddKey, RemoveKey, ChangePassphrase) without rewriting data. There is no default passphrase.
// From the master key, BLAKE3 key derivation gives the AES-256-GCM data key, the blob-ID key and the chunker's
// gear-table key.
//
// Init writes its key slot, then creates config with a create-only write (S3 and Azure If-None-Match: *, GCS
// ifGenerationMatch=0, a directory by link(2)), so of any number of Inits at once exactly one makes the
// repository; the others delete their slots and open it. A store that accepts a second create-only write of
// config ignores the condition and is refused. Open uses a slot whose master key opens config; a slot that
// the passphrase opens with another master key is a stray (from before Init was safe, or a lost Init's slot
// kept by object lock): objects sealed with its key are skipped by LoadIndex and Snapshots, named by Check
// and StrayKeys, and their packs kept by GC. "Sealed" means nonce (12 random bytes) | ciphertext | GCM tag (16 bytes), with associated
// data naming the object kind ("pxb blob", "pxb pack header", "pxb index", "pxb snapshot", "pxb config",
// "pxb lock", "pxb key slot") so no object can stand in for another kind.
//
// A slot's argon2id parameters are bounded: at most MaxKDFMemory (256 MiB), MaxKDFTime (10 passes) and
// MaxKDFThreads (16), so that opening fits the memory limits of pxb's Jobs (1 GiB, 2 GiB) with headroom
// (DefaultKDF is 32 MiB, 3 passes, 2 threads). AddKey, ChangePassphrase and Init refuse to write a slot
// beyond them. Open skips, without running argon2id, a slot beyond them (anyone holding the bucket's
// credential could plant one to exhaust memory), and skips a slot that cannot be read or decoded; it opens
// through another slot and names the skipped ones (SkippedKeySlots, KeyInfo.Problem; Check warns of them).
// When no slot is left to try, the error names each skipped slot and why.
//
// # Blobs and chunking
//
// A blob is a file chunk (data) or a part of a directory listing (tree). Its ID is keyed BLAKE3 of its
// plaintext, so IDs reveal nothing to someone without the key and every read is verified against its ID.
// Files are cut by FastCDC (normalized chunking level 2; defaults 256 KiB min, 1 MiB average, 4 MiB max) with
// a gear table derived from the key; files no larger than the minimum are one blob. A stored blob is sealed
// over one flag byte (0 raw, 1 zstd) and the payload; compression is zstd at the repository's level, with
// literals entropy-coded in blobs of 64 KiB or more. It is not tried on a blob whose bytes look random (byte entropy of the blob,
// or of samples of a large one, of 7.5 bits or more) and is dropped when it does not make the blob smaller.
//
// # Packs
//
//	blob_0 | ... | blob_n-1 | sealed header | uint32 LE length of the sealed header | "pxbP"
//
// The header plaintext is: version byte (1), uvarint count, then per blob: type byte, 32-byte ID, uvarint
// sealed length, uvarint plaintext length. Offsets follow from the lengths. Packs are streamed to the bucket
// and closed at about Config.PackSize (32 MiB by default).
//
// # Indexes
//
// An index object is sealed over: version byte (1), uvarint pack count, then per pack: 16-byte pack ID,
// uvarint pack size, uvarint blob count, per blob: type byte, 32-byte ID, uvarint offset, uvarint sealed
// length, uvarint plaintext length. A writer stores its own index objects after the packs they describe
// (every few packs, so an interrupted writer's finished packs are reused by the next backup). An index
// object that is read but cannot be opened or decoded is skipped by LoadIndex and named (SkippedIndexes):
// it costs the packs only it names (a backup stores those blobs again; a restore that needs them fails
// naming the blob), not every open. Check names it as damage and GC refuses to run while it is there, since
// the packs it names would look unused. A failed read is an error, not damage.
//
// # Trees and snapshots
//
// A directory listing is a sequence of tree blobs, each "pxbtree2\n" followed by its Nodes in a compact binary
// encoding (encodeNode), in strictly increasing name order, cut at about 1 MiB; a directory node lists its tree
// blob IDs. The encoding is deterministic, so an unchanged directory yields the same blobs (and a backup with
// a parent snapshot reuses an unchanged directory's blob IDs without encoding it). Tree blobs of format 1
// ("pxbtree1\n", one JSON Node per line) are still read. Files list their chunk IDs and holes
// (sparse regions); hard links share Dev/Inode with Links > 1. A snapshot manifest (JSON, sealed) holds the
// root directory node, time, host, source, parent and statistics; it is written last, after every pack and
// index it depends on, so a crash never leaves a snapshot that references missing data.
//
// One damaged snapshot object hides no other: Snapshots (and ListSnapshots) skip a manifest that cannot be
// read, opened or decoded (a newer format included) and name it (SkippedSnapshots, the second result of
// ListSnapshots); Check reports it as an error.
//
// Check verifies structure (indexes, pack sizes and headers, trees); with ReadData it also reads whole packs
// (all, or a random SubsetPercent) and opens every blob, so a flipped byte is found before a restore needs it.
// It lists the damaged packs (CheckResult.DamagedPacks); SnapshotsUsingPacks names the snapshots whose trees
// reference a blob in them, which are the snapshots that damage breaks.
//
// # Concurrency and garbage collection
//
// Locks are leases: an object with an expiry time (30 minutes after it is written by default), refreshed
// every fifth of that by writing a new lock object and deleting the old one, so a killed process never
// blocks anyone for long. Writers and readers (restores, and the store's reads) take shared leases and run in
// parallel, each writer storing its own packs and indexes (two writers may store the same blob; either copy
// serves). GC takes the exclusive lease. The protocol rests on these invariants:
//
//   - Write, then check: every locker writes its lock before listing the others, so of two conflicting
//     lockers at least one sees the other and backs off (ErrLocked). GC and a writer or reader never hold
//     their leases at once.
//   - Locks fail closed: a lock that cannot be read or decoded (a read error, a foreign key, a newer format)
//     conflicts with every kind of lock, and the refusal names it; only a lock that is not found when read is
//     taken as released, or one that the store's own times show older than a lease plus the allowance (its
//     write time against that of the lock just written), since a live holder writes a new lock object at
//     every refresh. A lock is live until its Expires plus the clock-skew allowance (5 minutes, or a
//     sixth of a shorter lease), judged by the reader's clock, so clocks up to that far apart never make a
//     live lease look expired. GC deletes only locks expired for a further lease duration.
//   - Lease before index: a writer (NewWriter) and a reader (ReadLease) take their lease first and load the
//     index after, so whatever the index then says is stored (including what a parent snapshot references)
//     stays until the lease ends. LoadIndex reflects deletions: when an index object it loaded is gone it
//     forgets the packs that no remaining index names (keeping its own process's unindexed packs and
//     reservations), so a deleted blob is stored again rather than referenced.
//   - No dangling snapshot: before writing a snapshot, a writer reloads the index; if an index object its
//     view rested on is gone, it checks every blob the snapshot references against what is left and fails
//     with ErrDataGone instead of writing.
//   - A lost lease stops the operation: a writer checks its lease before each index and the snapshot, GC
//     before each destructive step (aborting uploads, repacking, the new index, each index and each pack
//     deletion); a lease that could not be refreshed up to a tenth of its duration before it expires fails
//     the check with ErrLeaseLost. A reader's lapse destroys nothing and is not checked.
//   - Check needs no lease beside writers: it lists the snapshots before it reads the indexes, so every
//     snapshot it checks had its index stored first; one deleted since the listing is skipped, as by GC.
//   - Age and new indexes guard deletion too: GC deletes or repacks no pack younger, by the store's time,
//     than the lease plus the skew allowance (GCOptions.MinAge), and just before deleting packs it lists
//     index/ again and keeps every pack an index written since it started names.
//
// GC keeps every pack that holds a blob reachable from a snapshot, except that a pack mostly unused
// (GCOptions.RepackUnused, default half its bytes) has its used blobs copied, still sealed and verified, into
// new packs; it then writes one new index of the kept and new packs, deletes the old index objects and then
// the unreferenced packs; packs that are in no index are deleted only once older than the same minimum age,
// and on S3 so are the incomplete multipart uploads of packs that killed writers left
// (GCStats.AbortedUploads). With object lock, GC deletes nothing still retained (written less than the lock
// period ago): such unused packs, and every pack a retained index names, are kept and counted
// (GCStats.RetainedPacks, RetainedUntil), and no retained pack is repacked, since its old copy could not go. A
// deletion the store refuses anyway is reported in GCStats.Undeletable, and packs that a surviving index names
// are kept.
//
// # Versions
//
// Config, key slots, packs, indexes, trees, snapshots and locks carry a format version; a newer one is refused
// with an error saying so. A key slot or snapshot of a newer format is skipped and named as above, so the
// others stay usable; a config of a newer format makes the repository refuse to open.
package repo
