/* The small CGI program both servers run in the CGI benchmark: writes a
 * header and a short body naming the request, then exits. */
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	const char *q = getenv("QUERY_STRING");
	printf("Content-Type: text/plain\r\n\r\nHello from CGI, query '%s'\n", q ? q : "");
	return 0;
}
