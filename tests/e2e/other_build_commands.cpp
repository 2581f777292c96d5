// Stands for a libkdecomp_commands.so left over from another build (test_cli_library.cpp): its
// entry points exist, its request layout is not this build's.
extern "C" unsigned kdecomp_command_abi() { return 0; }
extern "C" int kdecomp_run_command(const void*) { return 0; }
