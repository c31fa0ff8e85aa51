// Package logfile reads and writes container logs in docker's json-file
// format: one JSON object per line,
//
//	{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
//
// "log" ends with "\n" when the container wrote a whole line; a line cut
// into pieces (longer than the copy buffer, or the last bytes before EOF)
// is stored as entries without it, as docker's partial messages are.
//
// The Writer rotates by size: when the next entry would take the file past
// MaxSize, <log> becomes <log>.1, <log>.1 becomes <log>.2, and so on up to
// MaxFiles files in all (docker's max-size and max-file). The Reader
// follows a file across those renames.
//
// It knows nothing of containers or the monitor. It owns the log file it is
// given and its rotated siblings.
package logfile
