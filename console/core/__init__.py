"""What every app of the console shares: errors, and the infrastructure under the apps."""
