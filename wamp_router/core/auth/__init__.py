"""core/auth"""
