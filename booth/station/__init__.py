"""The station: its states, screens, window and the photo it makes."""
