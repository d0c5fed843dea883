// The package role in one include: safe zip extraction, deterministic zipping of a function's
// directory, SHA-256 content addresses and the content-addressed code store.
// All of it is blocking file I/O: run it off the event loops.
#pragma once

#include "package/code_store.h"
#include "package/sha256.h"
#include "package/zip_extract.h"
#include "package/zip_write.h"
