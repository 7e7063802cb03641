#pragma once
// 128-bit unsigned arithmetic for overflow-safe size computations (a GCC/Clang extension).
namespace difftx {
__extension__ typedef unsigned __int128 uint128;
}  // namespace difftx
