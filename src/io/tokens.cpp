#include "io/tokens.h"

#include <cctype>

#include "core/error.h"

namespace difftx {

std::vector<int32_t> parse_token_list(const std::string& text, int64_t vocab_size) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  bool all_blank = true;
  for (char ch : text) all_blank = all_blank && std::isspace(static_cast<unsigned char>(ch));
  if (all_blank) throw Error("empty token list: give comma-separated ids such as 5,17,3");
  while (true) {
    const size_t comma = text.find(',', pos);
    std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const size_t a = item.find_first_not_of(" \t\r\n"), b = item.find_last_not_of(" \t\r\n");
    item = a == std::string::npos ? "" : item.substr(a, b - a + 1);
    const std::string where = "token #" + std::to_string(ids.size() + 1);
    if (item.empty()) throw Error(where + " is empty: give comma-separated ids such as 5,17,3");
    for (char ch : item)
      if (!std::isdigit(static_cast<unsigned char>(ch)))
        throw Error(where + " \"" + item + "\" is not a non-negative integer");
    if (item.size() > 10 || std::stoll(item) >= vocab_size)
      throw Error(where + " (" + item + ") is out of range: ids must be in [0, " +
                  std::to_string(vocab_size) + ")");
    ids.push_back(static_cast<int32_t>(std::stoll(item)));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return ids;
}

}  // namespace difftx
