// triplinectl: see tools/ctl/ctl_commands.h.
#include <iostream>
#include <string>

#include "common/version.h"
#include "tools/ctl/ctl_commands.h"

int main(int argc, char** argv) {
  if (argc == 2 && std::string(argv[1]) == "--version") {
    std::cout << "triplinectl " << TRIPLINE_VERSION << "\n";
    return 0;
  }
  return tripline::ctl::RunCtl(std::vector<std::string>(argv + 1, argv + argc), std::cout,
                               std::cerr);
}
