"""Configuration: defaults, overrides, and one clear line for every kind of mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from booth.config import Config, load_config
from booth.errors import BoothError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "booth.toml"
    path.write_text(text, encoding="utf-8")
    return path


def error_of(tmp_path: Path, text: str) -> str:
    with pytest.raises(BoothError) as info:
        load_config(write(tmp_path, text))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_no_file_gives_the_defaults():
    cfg = load_config(None, environ={})
    assert cfg == Config()
    assert cfg.scene.name == "sol46"
    assert (cfg.camera.width, cfg.camera.height, cfg.camera.fps) == (1280, 720, 30)
    assert cfg.station.mirror is True
    assert cfg.store.jpeg_quality == 90
    assert cfg.server.port == 8000


def test_an_empty_file_gives_the_defaults(tmp_path):
    assert load_config(write(tmp_path, ""), environ={}) == Config()


def test_a_file_changes_only_what_it_lists(tmp_path):
    cfg = load_config(environ={}, path=write(tmp_path, """
data_dir = "/srv/booth"

[camera]
width = 1920
height = 1080
stall_seconds = 3     # an int where a float is expected is fine

[station]
mirror = false

[server]
public_url = "http://192.168.1.20:8000"
"""))
    assert cfg.data_dir == "/srv/booth"
    assert cfg.data_path() == Path("/srv/booth")
    assert (cfg.camera.width, cfg.camera.height) == (1920, 1080)
    assert cfg.camera.stall_seconds == 3.0 and isinstance(cfg.camera.stall_seconds, float)
    assert cfg.station.mirror is False
    assert cfg.server.public_url == "http://192.168.1.20:8000"
    # everything else keeps its default
    assert cfg.camera.fps == 30
    assert cfg.station.countdown_seconds == 3
    assert cfg.scene == Config().scene
    assert cfg.store == Config().store


def test_the_environment_is_read_by_load_config_only(tmp_path, monkeypatch):
    """BOOTH_PLATE wins over the file's plate (and messages say it came from there);
    a Config made in code reads no environment."""
    config = write(tmp_path, f'[scene]\nplate = "{tmp_path / "file.jpg"}"\n')
    env = {"BOOTH_PLATE": str(tmp_path / "env.jpg"), "BOOTH_CACHE_DIR": str(tmp_path / "c")}
    cfg = load_config(config, environ=env)
    assert (cfg.scene.plate, cfg.scene.plate_from) == (env["BOOTH_PLATE"], "BOOTH_PLATE")
    assert cfg.cache_path() == tmp_path / "c"
    cfg = load_config(config, environ={})
    assert cfg.scene.plate == str(tmp_path / "file.jpg")
    assert cfg.scene.plate_from == "the config's [scene] plate"
    monkeypatch.setenv("BOOTH_PLATE", str(tmp_path / "env.jpg"))
    assert Config().scene.plate == ""
    assert load_config(None).scene.plate == str(tmp_path / "env.jpg")  # os.environ by default


def test_internal_fields_are_not_settings(tmp_path):
    message = error_of(tmp_path, '[scene]\nplate_from = "BOOTH_PLATE"\n')
    assert message.startswith("config: unknown setting 'scene.plate_from'")
    assert "plate_from" not in message.split(";", 1)[1]


def test_cache_dir_comes_from_the_file_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOTH_CACHE_DIR", str(tmp_path / "env-cache"))
    assert load_config(None).cache_path() == tmp_path / "env-cache"
    cfg = load_config(write(tmp_path, f'cache_dir = "{tmp_path / "file-cache"}"\n'))
    assert cfg.cache_path() == tmp_path / "file-cache"


def test_unknown_top_level_key(tmp_path):
    message = error_of(tmp_path, 'dta_dir = "/srv"\n')
    assert message.startswith("config: unknown setting 'dta_dir'")
    assert "data_dir" in message  # the list of known settings points at the right name


def test_unknown_nested_key(tmp_path):
    message = error_of(tmp_path, "[camera]\nwidht = 1920\n")
    assert message.startswith("config: unknown setting 'camera.widht'")
    assert "width" in message and "height" in message


def test_unknown_table(tmp_path):
    message = error_of(tmp_path, "[kamera]\nwidth = 1920\n")
    assert "unknown setting 'kamera'" in message


@pytest.mark.parametrize("text, expected", [
    ('[camera]\nwidth = "big"\n', "camera.width must be a whole number, got 'big'"),
    ("[camera]\nfps = 29.97\n", "camera.fps must be a whole number, got 29.97"),
    ("[station]\nmirror = 1\n", "station.mirror must be true or false, got 1"),
    ("[camera]\nfps = true\n", "camera.fps must be a whole number, got True"),
])
def test_a_value_of_the_wrong_type(tmp_path, text, expected):
    assert error_of(tmp_path, text) == f"config: {expected}"


def test_out_of_range(tmp_path):
    message = error_of(tmp_path, "[camera]\nfps = 0\n")
    assert message == "config: camera.fps = 0 is out of range; use 1 to 120"
    message = error_of(tmp_path, "[store]\njpeg_quality = 101\n")
    assert message == "config: store.jpeg_quality = 101 is out of range; use 50 to 100"


@pytest.mark.parametrize("text, where", [
    ("[camera]\nstall_seconds = nan\n", "camera.stall_seconds"),
    ("[segmentation]\nmin_person_fraction = nan\n", "segmentation.min_person_fraction"),
    ("[store]\nretention_hours = inf\n", "store.retention_hours"),
])
def test_nan_and_inf_are_out_of_range(tmp_path, text, where):
    message = error_of(tmp_path, text)
    assert message.startswith(f"config: {where} = ")
    assert "is out of range; use " in message


def test_invalid_toml(tmp_path):
    path = write(tmp_path, "[camera\nwidth = 1920\n")
    with pytest.raises(BoothError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"config file {path} is not valid TOML: ")
    assert "line 1" in message
    assert "\n" not in message


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(BoothError) as info:
        load_config(path)
    assert str(info.value) == f"config file {path} does not exist; check the --config path"


def test_a_folder_instead_of_a_file(tmp_path):
    with pytest.raises(BoothError) as info:
        load_config(tmp_path)
    assert str(info.value).startswith(f"config file {tmp_path} cannot be read: ")


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('data_dir = "/srv/caf\xe9"\n'.encode("latin-1"))
    with pytest.raises(BoothError) as info:
        load_config(path)
    assert str(info.value).startswith(f"config file {path} cannot be read: ")


def test_a_value_where_a_table_is_expected(tmp_path):
    message = error_of(tmp_path, "camera = 1920\n")
    assert message == "config: [camera] must be a table of settings"


def test_a_table_where_a_value_is_expected(tmp_path):
    message = error_of(tmp_path, "[camera.width]\npixels = 1920\n")
    assert message == "config: camera.width must be a whole number, got {'pixels': 1920}"
    message = error_of(tmp_path, "data_dir = { path = '/srv' }\n")
    assert message == "config: data_dir must be a string, got {'path': '/srv'}"


def test_a_still_size_is_taken_with_the_preview_shape(tmp_path):
    cfg = load_config(write(tmp_path, "[camera]\nstill_width = 3840\nstill_height = 2160\n"))
    assert (cfg.camera.still_width, cfg.camera.still_height) == (3840, 2160)
    assert (Config().camera.still_width, Config().camera.still_height) == (0, 0)  # off


_BAD_STILL = [
    ("still_width = 1920\n", "config: camera.still_width and camera.still_height go together; "
                             "set both, or both to 0 for no still"),
    ("still_width = -1\nstill_height = 1080\n",
     "config: camera.still_width = -1 is out of range; use 0 to 12000"),
    ("still_width = 1280\nstill_height = 720\n",
     "config: camera.still_height = 720 is no bigger than camera.height = 720; a still must be "
     "larger than the preview (or set both still sizes to 0)"),
    ("still_width = 2592\nstill_height = 1944\n",
     "config: camera.still_width x camera.still_height (2592x1944) must have the shape of "
     "camera.width x camera.height (1280x720), e.g. 3456x1944: the photo keeps the preview's "
     "framing"),
    ('still_width = "4k"\nstill_height = 2160\n',
     "config: camera.still_width must be a whole number, got '4k'"),
]


def test_a_wifi_network_for_the_result_screen(tmp_path):
    cfg = load_config(write(tmp_path, '[server]\nwifi_ssid = "Museum Guest"\n'
                                      'wifi_password = "mars-rover-2026"\nwifi_hidden = true\n'))
    assert (cfg.server.wifi_ssid, cfg.server.wifi_password, cfg.server.wifi_hidden) == \
        ("Museum Guest", "mars-rover-2026", True)
    assert Config().server.wifi_ssid == ""  # off: no Wi-Fi code
    open_net = load_config(write(tmp_path, '[server]\nwifi_ssid = "Musée"\n'))
    assert open_net.server.wifi_password == ""
    raw_key = "0123456789abcdef" * 4  # a WPA key given as 64 hex digits
    assert load_config(write(tmp_path, f'[server]\nwifi_ssid = "M"\nwifi_password = '
                                       f'"{raw_key}"\n')).server.wifi_password == raw_key


_BAD_WIFI = [
    ('wifi_password = "mars-rover-2026"\n',
     "config: server.wifi_password needs server.wifi_ssid, the network's name; set it too (or "
     "remove both for no Wi-Fi code)"),
    ("wifi_hidden = true\n",
     "config: server.wifi_hidden needs server.wifi_ssid, the network's name; set it too (or "
     "remove both for no Wi-Fi code)"),
    ('wifi_ssid = "Museum of Mars Exploration, 2.4 GHz"\n',
     "config: server.wifi_ssid is 35 characters long; a Wi-Fi network's name has at most 32 "
     "bytes, as the router shows it"),
    ('wifi_ssid = "Musée des sciences de la planète M"\n',
     "config: server.wifi_ssid is 36 bytes (UTF-8) long; a Wi-Fi network's name has at most "
     "32 bytes, as the router shows it"),
    ('wifi_ssid = "Museum"\nwifi_password = "mars"\n',
     "config: server.wifi_password is 4 characters long; a WPA password has 8 to 63 (or is "
     "64 hex digits); leave it empty for an open network"),
    (f'wifi_ssid = "Museum"\nwifi_password = "{"x" * 64}"\n',
     "config: server.wifi_password is 64 characters long; a WPA password has 8 to 63 (or is "
     "64 hex digits); leave it empty for an open network"),
    ('wifi_ssid = "Museum"\nwifi_hidden = "yes"\n',
     "config: server.wifi_hidden must be true or false, got 'yes'"),
]


@pytest.mark.parametrize("text, expected", [
    *(("[camera]\n" + text, expected) for text, expected in _BAD_STILL),
    *(("[server]\n" + text, expected) for text, expected in _BAD_WIFI),
])
def test_a_bad_still_size_or_wifi_setting_is_refused_naming_it(tmp_path, text, expected):
    assert error_of(tmp_path, text) == expected


@pytest.mark.parametrize("text, expected", [
    ('[store]\ndatabase_url = "postgresql://booth@db/booth"\n',
     "store.database_url and store.photos_url go together"),
    ('[store]\nphotos_url = "s3://photos"\n',
     "store.database_url and store.photos_url go together"),
    ('[store]\ndatabase_url = "mysql://booth:secret@db/booth"\nphotos_url = "s3://p"\n',
     "store.database_url = 'mysql://booth:***@db/booth'; use postgresql://"),
    ('[store]\ndatabase_url = "postgresql://db/booth"\nphotos_url = "/srv/photos"\n',
     "store.photos_url = '/srv/photos'; use s3://bucket"),
    ('[store]\ndatabase_url = "postgresql://db/b"\nphotos_url = "s3://p"\n'
     's3_endpoint_url = "127.0.0.1:8333"\n',
     "store.s3_endpoint_url = '127.0.0.1:8333'; use http://host:port"),
])
def test_a_shared_store_half_or_wrongly_set_is_refused(tmp_path, text, expected):
    """One line naming the setting, and never the database password."""
    message = error_of(tmp_path, text)
    assert message.startswith("config: ") and expected in message
    assert "secret" not in message


def test_a_shared_store_is_read_from_the_file(tmp_path):
    cfg = load_config(write(tmp_path, '[store]\ndatabase_url = "postgresql://booth@db/booth"\n'
                                      'photos_url = "s3://photos/booth"\n'
                                      's3_endpoint_url = "http://127.0.0.1:8333"\n'),
                      environ={})
    assert (cfg.store.database_url, cfg.store.photos_url, cfg.store.s3_endpoint_url) == (
        "postgresql://booth@db/booth", "s3://photos/booth", "http://127.0.0.1:8333")
