// The system SQLite (Debian: libsqlite3-dev; scripts/ensure-deps.sh installs it).
#include <sqlite3.h>
