// norm kernels: filled in by their family.
#pragma once
#include <stdint.h>
