/* sqlite_busy.c: LD_PRELOAD shim for the test Kamailio. Its db_sqlite module opens the
 * database without a busy timeout, so when two of its processes write at the same instant
 * (a PUBLISH and an XCAP PUT, a SUBSCRIBE's state and a PUBLISH) one fails at once with
 * "database is locked" and the request is answered 500. Every connection opened gets a
 * busy timeout, as a production database would wait for its lock.
 * Built by run.sh: cc -shared -fPIC -o sqlite_busy.so sqlite_busy.c -ldl
 * (no sqlite3.h needed: the two prototypes are declared here). */
#define _GNU_SOURCE
#include <dlfcn.h>

typedef struct sqlite3 sqlite3;

#define BUSY_MS 5000

/* The real library: db_sqlite.so brings it in by dlopen, out of RTLD_NEXT's reach. */
static void *real_symbol(const char *name)
{
	static void *lib;
	if (!lib)
		lib = dlopen("libsqlite3.so.0", RTLD_NOW | RTLD_LOCAL);
	return lib ? dlsym(lib, name) : 0;
}

static void wait_for_locks(sqlite3 *db)
{
	int (*busy)(sqlite3 *, int) = (int (*)(sqlite3 *, int))real_symbol("sqlite3_busy_timeout");
	if (db && busy)
		busy(db, BUSY_MS);
}

int sqlite3_open_v2(const char *name, sqlite3 **db, int flags, const char *vfs)
{
	static int (*real)(const char *, sqlite3 **, int, const char *);
	if (!real)
		real = (int (*)(const char *, sqlite3 **, int, const char *))real_symbol("sqlite3_open_v2");
	if (!real)
		return 14; /* SQLITE_CANTOPEN */
	int rc = real(name, db, flags, vfs);
	if (rc == 0)
		wait_for_locks(*db);
	return rc;
}

int sqlite3_open(const char *name, sqlite3 **db)
{
	static int (*real)(const char *, sqlite3 **);
	if (!real)
		real = (int (*)(const char *, sqlite3 **))real_symbol("sqlite3_open");
	if (!real)
		return 14; /* SQLITE_CANTOPEN */
	int rc = real(name, db);
	if (rc == 0)
		wait_for_locks(*db);
	return rc;
}
