/* Unit tests of log_escape, which makes names from catalogs and command lines
 * safe to print on one log line. */
#include <string.h>

#include "fetch/log.h"
#include "tests/unit/unit.h"

int main(void)
{
	char buf[16], small[8];

	CHECK("plain text is copied", strcmp(log_escape("tiny-1.0", buf, sizeof(buf)), "tiny-1.0") == 0);
	CHECK("empty text gives empty", strcmp(log_escape("", buf, sizeof(buf)), "") == 0);
	CHECK("newline escaped", strcmp(log_escape("a\nb", buf, sizeof(buf)), "a\\x0ab") == 0);
	CHECK("escape character escaped", strcmp(log_escape("\x1b[2J", buf, sizeof(buf)), "\\x1b[2J") == 0);
	CHECK("backslash escaped", strcmp(log_escape("a\\b", buf, sizeof(buf)), "a\\x5cb") == 0);
	CHECK("delete and high bytes escaped", strcmp(log_escape("\x7f\xc3", buf, sizeof(buf)), "\\x7f\\xc3") == 0);
	CHECK("long text cut with dots", strcmp(log_escape("abcdefghijklmnopqrstuvwxyz", buf, sizeof(buf)),
						"abcdefghijkl...") == 0);
	CHECK("escape not split by the cut", strcmp(log_escape("abcdefghij\nxyz", buf, sizeof(buf)),
						    "abcdefghij...") == 0);
	CHECK("escape that fits is kept", strcmp(log_escape("abcdefghij\n", buf, sizeof(buf)),
						 "abcdefghij\\x0a") == 0);
	CHECK("text that fits exactly is not cut",
	      strcmp(log_escape("abcdefghijklmno", buf, sizeof(buf)), "abcdefghijklmno") == 0);
	CHECK("eight bytes is the smallest buffer", strcmp(log_escape("abcdefgh", small, sizeof(small)), "abcd...") == 0);
	CHECK("smaller buffer gives a question mark", strcmp(log_escape("a", small, 7), "?") == 0);
	return unit_exit();
}
