# ruff: noqa: E501  (label strings are kept whole so that each reads as one sentence)
"""Report labels in Chinese and English (one key, both languages: the pages have the same content)."""

from __future__ import annotations

from typing import Literal

Lang = Literal["zh", "en"]
LANGS: tuple[Lang, ...] = ("zh", "en")

_L = {
    "report_title": ("重型货车货运二氧化碳排放清单报告", "CO2 inventory of heavy-truck road freight"),
    "subtitle": (
        "运行 {run} · truckcarbon {version} · 城市 × 月份",
        "run {run} · truckcarbon {version} · city x month",
    ),
    "lang_name": ("中文", "English"),
    "national": ("全国排放趋势", "National trends"),
    "annual_title": ("全国年排放量", "National annual CO2"),
    "monthly_title": (
        "全国月排放量（★ 春节所在月，× 异常月）",
        "National monthly CO2 (★ Chinese New Year month, × shock)",
    ),
    "co2_1e8": ("亿吨 CO2", "10^8 t CO2"),
    "co2_wan": ("万吨 CO2", "10^4 t CO2 (万吨)"),
    "wan_t_month": ("万吨/月", "10^4 t / month"),
    "new_year": ("春节所在月", "Chinese New Year month"),
    "shock": ("异常月", "shock month"),
    "year": ("年份", "year"),
    "growth": ("增长率", "growth"),
    "months": ("月数", "months"),
    "cities": ("六大城市", "Six major cities"),
    "cities_title": ("六大城市月排放量（运营视角）", "Monthly CO2 of six major cities (operating view)"),
    "yearly_mean_note": ("各年月均排放量（万吨）", "Mean monthly CO2 per year (10^4 t)"),
    "city": ("城市", "city"),
    "clusters": ("三大城市群", "Three city clusters"),
    "cluster_jjj": ("京津冀", "Jing-Jin-Ji"),
    "cluster_yrd": ("长三角", "Yangtze River Delta"),
    "cluster_prd": ("珠三角", "Pearl River Delta"),
    "standards": ("排放标准构成", "Emission standards"),
    "shares_title": ("各排放标准车辆的排放占比", "Share of CO2 by emission standard"),
    "maps": ("排放空间分布（按排放标准与时期）", "Maps by emission standard and period"),
    "map_note": (
        "城市月均排放（万吨），省界加粗。底图：",
        "Mean monthly CO2 per city (10^4 t), provinces outlined. Map data:",
    ),
    "rankings": ("城市排名与单位 GDP 排放", "Top cities and CO2 per GDP"),
    "rank": ("排名", "rank"),
    "gdp": ("GDP（亿元）", "GDP (亿元, 10^8 yuan)"),
    "intensity": ("吨 CO2 / 亿元 GDP", "t CO2 per 亿元 GDP"),
    "gdp_note": (
        "按运营排放排序的前十城市；无 GDP 数据的城市以“—”显示。",
        "Top ten cities by operating CO2; cities without GDP show —.",
    ),
    "exchange": ("注册地与运营地排放对比", "Registration vs operating emissions"),
    "exchange_note": (
        "比值 = 注册地排放 / 运营地排放：大于 1 为排放输出地（本地车辆在外地排放），小于 1 为输入地。",
        "Ratio = registration / operating CO2: above 1 an exporter (its trucks emit elsewhere), below 1 a receiver.",
    ),
    "by_province": ("分省", "By province"),
    "city_exporters": ("输出最多的城市", "Cities exporting most"),
    "city_receivers": ("输入最多的城市", "Cities receiving most"),
    "place": ("地区", "place"),
    "registration": ("注册地排放（万吨）", "registration (10^4 t)"),
    "operating": ("运营地排放（万吨）", "operating (10^4 t)"),
    "ratio": ("比值", "ratio"),
    "role": ("类型", "role"),
    "exporter": ("输出地", "exporter"),
    "receiver": ("输入地", "receiver"),
    "balanced": ("平衡", "balanced"),
    "forecast": ("排放预测", "Forecast"),
    "forecast_title": (
        "全国月排放预测（Prophet，80% 与 95% 区间）",
        "National monthly forecast (Prophet, 80% and 95% intervals)",
    ),
    "actual": ("实际", "actual"),
    "seasonal_naive": ("季节朴素", "seasonal naive"),
    "ets": ("指数平滑 ETS", "ETS"),
    "prophet": ("Prophet", "Prophet"),
    "peak_text": (
        "历史与预测中年排放最高的年份：{year}；模拟路径中峰值已出现的比例：{share}。",
        "Year of the highest annual total in history and forecast: {year}; share of simulated paths that have already peaked: {share}.",
    ),
    "backtest": ("滚动回测 MAPE（按预测步长）", "Rolling-origin backtest MAPE by horizon"),
    "model": ("模型", "model"),
    "quality": ("数据质量", "Data quality"),
    "pings_read": ("读取定位点", "pings read"),
    "pings_kept": ("保留定位点", "pings kept"),
    "quarantined": ("隔离", "quarantined"),
    "vehicles_kept": ("保留车辆 / 读取车辆", "vehicles kept / read"),
    "fixes": ("定位点清洗", "fixes"),
    "item": ("项目", "item"),
    "count": ("数量", "count"),
    "method": ("方法与数据来源", "Method and sources"),
    "method_text": (
        "排放 = 里程 × 油耗率（排放标准、载重状态）/ 100 × 排放因子；载重未知时取 0.4 空载 + 0.6 满载；油量表可用时采用实测油耗。",
        "CO2 = km x fuel rate (standard, load) / 100 x emission factor; 0.4 empty + 0.6 full when the load is unknown; the measured fuel when the gauge is usable.",
    ),
    "factors": ("排放因子与油耗率（60 km/h）", "Factors and fuel rates (60 km/h)"),
    "value": ("数值", "value"),
    "source": ("来源", "source"),
    "inputs": ("输入文件", "Input files"),
    "role_col": ("类型", "role"),
    "hash": ("文件哈希", "file hash"),
    "file": ("文件", "file"),
    "published": ("已发布数据与本次运行对比", "Published figures vs this run"),
    "published_note": (
        "全国年排放（亿吨）：来源报告发布值与本次运行结果（演示世界经校准）。",
        "National annual CO2 (10^8 t): the source report's published values and this run (the demo world is calibrated to them).",
    ),
    "published_na": (
        "本次运行的数据不是模拟演示世界，不与来源报告的发布值对比（仅对演示世界有意义）。",
        "This run is not the simulated demo world, so it is not compared with the source report's published figures (the comparison is meaningful for the demo world only).",
    ),
    "published_col": ("发布值", "published"),
    "this_run": ("本次运行", "this run"),
    "difference": ("差异", "difference"),
    "not_made": ("本节未能生成", "This section could not be made"),
    "incomplete": ("本节不完整，运行文件夹中缺少", "Incomplete: not in the run folder"),
}

T: dict[str, dict[Lang, str]] = {k: {"zh": zh, "en": en} for k, (zh, en) in _L.items()}
