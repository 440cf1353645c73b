/* Helpers shared by the unit and integration tests. */
#ifndef CONSOLE_TESTUTIL_H
#define CONSOLE_TESTUTIL_H

/** Removes a directory tree a test made (files and directories only; symlinks unlinked). */
void test_rm_tree(const char *path);

#endif
