/* fault — see fault.h. A small fixed table: faults are rare and of few
 * kinds; past its size the rest are counted together, and only the first
 * of them is said. */
#include "host/fault.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#define MAX_FAULTS 32

static struct fault {
	const char *who, *what;
	uint64_t count;
} faults[MAX_FAULTS];
static unsigned nr_faults;
static uint64_t overflow;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static struct fault *find(const char *who, const char *what)
{
	for (unsigned i = 0; i < nr_faults; i++)
		if (strcmp(faults[i].who, who) == 0 && strcmp(faults[i].what, what) == 0)
			return &faults[i];
	return NULL;
}

void host_fault(const char *who, const char *what, int err, const char *then)
{
	pthread_mutex_lock(&lock);
	struct fault *f = find(who, what);
	bool first = !f && (nr_faults < MAX_FAULTS || !overflow);
	if (!f && nr_faults < MAX_FAULTS) {
		f = &faults[nr_faults++];
		*f = (struct fault){ .who = who, .what = what };
	}
	if (f)
		f->count++;
	else
		overflow++;
	pthread_mutex_unlock(&lock);
	if (first)
		fprintf(stderr, "vigil: %s: %s%s%s%s; %s\n", who, what, err ? " (" : "", err ? strerror(err) : "",
			err ? ")" : "", then);
}

uint64_t host_fault_count(const char *who, const char *what)
{
	pthread_mutex_lock(&lock);
	struct fault *f = find(who, what);
	uint64_t n = f ? f->count : 0;
	pthread_mutex_unlock(&lock);
	return n;
}

void host_fault_report(FILE *out)
{
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < nr_faults; i++)
		fprintf(out, "fault %s: %s: %" PRIu64 "\n", faults[i].who, faults[i].what, faults[i].count);
	if (overflow)
		fprintf(out, "fault (others): %" PRIu64 "\n", overflow);
	pthread_mutex_unlock(&lock);
}
