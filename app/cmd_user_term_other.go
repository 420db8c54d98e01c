//go:build !linux

package app

import (
	"bufio"
	"os"
	"strings"
)

// Off Linux the prompt echoes; pipe the password on stdin to avoid that.
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func readNoEcho(f *os.File) (string, error) {
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}
