# Copying a data directory between storage backends (sluiced --migrate).
# SPDX-License-Identifier: Apache-2.0
