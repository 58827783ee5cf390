// Declarations only (include/CFuzzerDriver.h); libFuzzer itself comes from -sanitize=fuzzer.
