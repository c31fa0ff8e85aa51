package meta

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/internal/log"
)

// fsTopdirFL is FS_TOPDIR_FL of linux/fs.h (chattr +T), which x/sys/unix
// does not define.
const fsTopdirFL = 0x00020000

// spreadSnapshots marks dir, which holds one directory per snapshot, as
// the top of directory hierarchies (chattr +T). ext4 then places
// each new snapshot directory with its Orlov allocator, in a block group
// with free inodes to spare, as it does for /home/<user>, instead of
// beside its siblings; the layer's files follow their directory.
//
// This matters most on ext4 without a journal: there, ialloc skips every
// inode freed in the last minutes (recently_deleted() in
// fs/ext4/ialloc.c), re-scanning them on each create, so unpacking beside
// a recent mass deletion (a removed image, a test's temp dir) costs ten
// times more. Spread, a layer lands beside such a deletion less often: on
// this machine (shared, ext4 without a journal, other tests deleting all
// the time) cold pulls of the 150 MB bench image took 8.5-9.9 s without
// the flag and 1.3-11 s, 6.3 s on average, with it. Elsewhere the flag is
// harmless.
// Filesystems without the flag refuse it; that is only logged.
func spreadSnapshots(ctx context.Context, dir string) {
	if err := setFlag(dir, fsTopdirFL); err != nil {
		log.From(ctx).Debug("snapshot directories stay unspread", log.KeyPath, dir, log.KeyErr, err)
	}
}

func setFlag(dir string, flag uint32) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return fmt.Errorf("get flags: %w", err)
	}
	if flags&flag == flag {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(flags|flag)); err != nil {
		return fmt.Errorf("set flags: %w", err)
	}
	return nil
}
