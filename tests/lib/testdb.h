/*
 * Integration-test helper: a fresh database per test suite on the throwaway cluster the
 * ctest fixture "pg" started (CONSOLE_TEST_DATABASE_URL points at its "postgres" db).
 */
#ifndef CONSOLE_TESTDB_H
#define CONSOLE_TESTDB_H

/**
 * Creates a new empty database named <prefix>_<random> and returns a conninfo string for
 * it (caller frees). Aborts the test run when the cluster is unreachable.
 */
char *testdb_create(const char *prefix);
/** Drops a database made by testdb_create (conninfo as returned). */
void testdb_drop(const char *conninfo);

#endif
