#include "cli/cli.h"

int main(int argc, char** argv) {
  return canopy::cli::RunCli(argc, argv);
}
