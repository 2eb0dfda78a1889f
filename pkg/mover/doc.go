// Package mover moves file trees between a mounted volume and a pxb repository.
//
// Backup(ctx, r, dir, Options{Parent, Progress}) walks dir in name order and stores it as a snapshot:
// regular files (content-defined chunks, deduplicated), directories, symlinks, hard links (stored once,
// linked again on restore), sparse files (holes found with SEEK_DATA/SEEK_HOLE, recorded, not stored),
// empty files and directories, fifos, sockets and device nodes (metadata only), with mode (including
// setuid/setgid/sticky), uid/gid, mtime and extended attributes. With a Parent snapshot, a file whose size,
// mtime, ctime and inode are unchanged reuses the parent's chunk list without being read.
//
// The pipeline: walkers (up to GOMAXPROCS at once) list directories and stat entries; Options.Readers goroutines read files,
// cut chunks and hash them (small files are also compressed and encrypted there); GOMAXPROCS savers
// compress and encrypt new chunks of large files into the writer's pack. A directory's listing is stored
// by whichever goroutine finishes its last entry, so the walk never waits for data and memory holds only
// the directories in progress. A file that changes or vanishes while it is read fails the backup with an
// error naming it; nothing is skipped silently. The parent's listings of a directory's subdirectories are
// read ahead together (repo.TreeFetcher) when the directory is listed, and so are a snapshot's on restore:
// on an object store, a walk that read each listing when it got there would wait a round trip per directory.
//
// Restore(ctx, r, snapshotID, subpath, target, RestoreOptions{}) writes a snapshot (or the directory or
// file at subpath) into an empty or absent target: small files in batches that read neighbouring blobs
// together, large files chunk by chunk in parallel; holes and all-zero chunks are left unwritten so files
// come back sparse; ownership is restored when running as root, directory metadata last. Nothing is cached
// locally: every chunk is read from the repository, verified against its ID and written once.
//
// Both report Progress (files and bytes, done and total) to an optional callback about once a second.
package mover
