/* q7 command line (placeholder until the tool lands). */
#include <stdio.h>
int main(void)
{
    fprintf(stderr, "q7: not built yet\n");
    return 2;
}
