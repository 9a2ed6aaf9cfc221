package jsonstr

import "testing"

func TestAppend(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"q\"b\\s", `"q\"b\\s"`},
		{"\b\f\n\r\t\x00\x1f", `"\b\f\n\r\t\u0000\u001f"`},
		{"<&>", `"<&>"`},
		{"é€😀", `"é€😀"`},
		{"bad\xffutf\xc3", `"bad\ufffdutf\ufffd"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := string(Append(nil, tt.in)); got != tt.want {
				t.Errorf("Append(%q): got %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
