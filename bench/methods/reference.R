# Reference values for trent-stats' tests from the R reference implementations, *run*
# (never copied): PHEindicatormethods (UKHSA, GPL-3) for life expectancy and the slope
# index of inequality, and NHSRplotthedots (NHS-R community, MIT) for Making Data Count
# SPC. Invoked by bench/methods/run.sh; see that script for how the packages are
# installed. Not run by CI. The numbers it prints are pasted into
# crates/trent-stats/tests/*.rs with a comment naming this script.
suppressPackageStartupMessages({
  library(dplyr)
  library(PHEindicatormethods, lib.loc = Sys.getenv("R_REF_LIB", "/tmp/Rlib"))
})
options(digits = 15, width = 250, warn = -1)

cat("PHEindicatormethods", as.character(packageVersion("PHEindicatormethods",
    lib.loc = Sys.getenv("R_REF_LIB", "/tmp/Rlib"))), "\n\n")

# ---- life expectancy (Chiang II, Silcocks CI), 20 bands ----
ages <- c(0L, 1L, 5L, 10L, 15L, 20L, 25L, 30L, 35L, 40L, 45L, 50L, 55L, 60L, 65L,
          70L, 75L, 80L, 85L, 90L)
deaths <- c(17, 3, 1, 2, 4, 6, 8, 10, 14, 22, 35, 56, 80, 120, 180, 260, 350, 420, 380, 300)
pops <- c(5200, 21000, 26000, 25500, 24800, 27000, 29500, 30200, 28700, 27900, 29800,
          30500, 28100, 25200, 23400, 18100, 12600, 8100, 4200, 1700)
le <- data.frame(age = ages, deaths = deaths, pops = pops)
cat("== life expectancy\n")
print(as.data.frame(phe_life_expectancy(le, deaths, pops, age, confidence = c(0.95, 0.998),
                                        type = "standard")), digits = 15)

# a small-area table: the 95% CI exceeds 20 years for the older ages
le2 <- data.frame(age = ages, deaths = c(1, 0, 0, 0, 0, 0, 1, 0, 1, 1, 2, 3, 4, 6, 9, 12, 15, 18, 14, 9),
                  pops = c(60, 250, 310, 300, 290, 320, 350, 360, 340, 330, 350, 360, 330, 300,
                           280, 210, 150, 95, 50, 25))
cat("== life expectancy, small area (total pop 5,255)\n")
print(as.data.frame(phe_life_expectancy(le2, deaths, pops, age, confidence = 0.95,
                                        type = "standard")), digits = 15)

# ---- SII ----
sii_df <- data.frame(
  q = 1:10,
  pop = c(98000, 101000, 99500, 100200, 102000, 97800, 99900, 100500, 101200, 99000),
  value = c(82.1, 80.4, 79.0, 77.8, 75.1, 74.0, 72.2, 70.9, 68.0, 66.5),
  lcl = c(79.0, 77.5, 76.2, 75.0, 72.4, 71.3, 69.6, 68.3, 65.4, 64.0),
  ucl = c(85.2, 83.3, 81.8, 80.6, 77.8, 76.7, 74.8, 73.5, 70.6, 69.0))
set.seed(1)
cat("== sii value_type 0 (normal), rii\n")
print(as.data.frame(phe_sii(sii_df, q, pop, value = value, lower_cl = lcl, upper_cl = ucl,
                            value_type = 0, rii = TRUE, type = "standard",
                            confidence = c(0.95, 0.998), repetitions = 100000)), digits = 15)
rate_df <- data.frame(
  q = 1:5,
  pop = c(180000, 201000, 195000, 210000, 190000),
  value = c(1450.2, 1302.5, 1190.0, 1080.4, 960.7),
  lcl = c(1395.0, 1252.0, 1141.0, 1034.0, 916.0),
  ucl = c(1507.0, 1355.0, 1241.0, 1128.0, 1007.0))
set.seed(1)
cat("== sii value_type 1 (rate), multiplier -1\n")
print(as.data.frame(phe_sii(rate_df, q, pop, value = value, lower_cl = lcl, upper_cl = ucl,
                            value_type = 1, multiplier = -1, rii = TRUE,
                            type = "standard", repetitions = 100000)), digits = 15)
prop_df <- data.frame(
  q = 1:5, pop = c(5000, 5200, 4900, 5100, 5050), x = c(1100, 980, 850, 700, 600))
prop_df$value <- prop_df$x / prop_df$pop
prop_df$lcl <- phe_proportion(prop_df, x, pop, type = "standard")$lowercl
prop_df$ucl <- phe_proportion(prop_df, x, pop, type = "standard")$uppercl
set.seed(1)
cat("== sii value_type 2 (proportion), multiplier 100\n")
print(as.data.frame(phe_sii(prop_df, q, pop, value = value, lower_cl = lcl, upper_cl = ucl,
                            value_type = 2, multiplier = 100, rii = TRUE,
                            type = "standard", repetitions = 100000)), digits = 15)

# ---- Making Data Count SPC: NHSRplotthedots' own functions, sourced from its tree ----
ptd <- Sys.getenv("PTD_SRC", "")
if (nzchar(ptd)) {
  # NHSRplotthedots needs dplyr >= 1.1 for case_when(.default = ); shim it on older dplyr.
  if (packageVersion("dplyr") < "1.1.0") {
    orig_cw <- dplyr::case_when
    shim <- function(..., .default = NULL) {
      if (is.null(.default)) orig_cw(...) else orig_cw(..., TRUE ~ .default)
    }
    assignInNamespace("case_when", shim, "dplyr")
  }
  for (f in c("ZZZ.R", "ptd_spc_standard.R", "ptd_calculate_point_type.R",
              "ptd_calculate_assurance_type.R")) source(file.path(ptd, "R", f))
  spc <- function(y, rebase = rep(0, length(y)), direction = 1, screen = TRUE, target = NULL,
                  improvement = "increase") {
    d <- data.frame(v = y, d = seq_along(y), rebase = rebase)
    s <- ptd_spc_standard(d, list(value_field = "v", date_field = "d", facet_field = NULL,
                                  fix_after_n_points = NULL, trajectory = NULL,
                                  screen_outliers = screen))
    s <- ptd_calculate_point_type(s, direction)
    out <- as.data.frame(s[, c("y", "rebase_group", "mean_col", "lpl", "upl",
                               "special_cause_type", "point_type")])
    print(out, digits = 15)
    if (!is.null(target)) {
      s$target <- target
      attr(s, "options") <- list(target = target, improvement_direction = improvement)
      print(as.data.frame(ptd_calculate_assurance_type(s)))
    }
  }
  y1 <- c(10, 12, 11, 13, 12, 11, 10, 12, 13, 12, 11, 30, 12, 11, 13, 14, 15, 16, 17, 18,
          19, 12, 11, 10, 11, 12, 11, 10, 9, 8, 7, 15.5, 16, 9)
  cat("== spc: increase, screened\n"); spc(y1, target = 25)
  cat("== spc: decrease, unscreened\n"); spc(y1, direction = -1, screen = FALSE, target = 14, improvement = "decrease")
  y2 <- c(5, 6, 5, 7, 6, 5, 6, 7, 6, 5, 6, 5, 9, 10, 9, 11, 10, 9, 10, 11, 10, 9)
  cat("== spc: rebased at point 13, neutral\n")
  spc(y2, rebase = as.numeric(seq_along(y2) == 13), direction = 0)
}
if (nzchar(ptd)) {
  y3 <- c(10, 11, 9, 10, 12, 8, 10, 11, 9, 10, 10, 11, 9, 10.5, 13.9, 13.7, 10.5, 10, 9, 9.5,
          6.6, 6.5, 9.5, 11)
  cat("== spc: two in three near the limits, increase\n"); spc(y3)
}
