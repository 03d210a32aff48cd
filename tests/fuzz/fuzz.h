/* SPDX-License-Identifier: MIT */
/* The libFuzzer entry points every fuzz target defines (and replay-main.c calls). */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: a target may define it for one-time setup. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
