#pragma once
// Temporary files and folders this process is writing, removed when SIGINT or SIGTERM ends
// it, so that an interrupted command leaves no debris. Registration is cheap and thread-safe;
// the removal runs inside the signal handler with async-signal-safe calls only.
#include <string>

namespace difftx {

// Registers a temporary path (file or folder); returns a slot for unregister_temporary, or -1
// when the table is full (the path is then simply not cleaned on a signal).
int register_temporary(const std::string& path);
void unregister_temporary(int slot);

// Removes every registered temporary now. Async-signal-safe: for other signal handlers
// (e.g. train's) that end the process themselves.
void remove_registered_temporaries() noexcept;

// Installs handlers for SIGINT and SIGTERM that remove the registered temporaries and then
// end the process by the same signal (default action), as if no handler had run.
void install_cleanup_on_signals();

}  // namespace difftx
