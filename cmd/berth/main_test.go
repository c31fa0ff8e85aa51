package main

import (
	"slices"
	"testing"

	"github.com/spf13/cobra"
)

// TestFlagSets builds every command's full flag set, which panics when a
// verb's shorthand collides with a global one.
func TestFlagSets(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		t.Run(c.CommandPath(), func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("flags of %s: %v", c.CommandPath(), r)
				}
			}()
			c.InitDefaultHelpFlag()
			_ = c.Flags()
			_ = c.InheritedFlags()
			_ = c.LocalFlags()
		})
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCommand())
}

func TestGlobalShorthands(t *testing.T) {
	tests := []struct{ in, want []string }{
		{[]string{"-H", "unix:///x", "ps"}, []string{"--host", "unix:///x", "ps"}},
		{[]string{"-H=unix:///x", "history", "-H", "busybox"}, []string{"--host=unix:///x", "history", "-H", "busybox"}},
		{[]string{"--log-level", "debug", "-H", "tcp://h:1", "ps"}, []string{"--log-level", "debug", "--host", "tcp://h:1", "ps"}},
		{[]string{"daemon", "-H", "unix:///y"}, []string{"daemon", "-H", "unix:///y"}},
	}
	for _, tt := range tests {
		if got := globalShorthands(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("globalShorthands(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
